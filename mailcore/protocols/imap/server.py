"""The IMAP listener: asyncio servers on ``imap_addr`` (plain with STARTTLS, RFC 3501 §6.2.1)
and ``imaps_addr`` (implicit TLS, RFC 8314), and one connection object per client that frames
commands (lines and literals, RFC 3501 §4.3, RFC 7888), enforces the limits, dispatches to the
handlers of :mod:`commands` by state, waits in IDLE (RFC 2177), and relays change events as
untagged updates (§7.4.1).

Limits (ARCHITECTURE.md "Bounded work"): line length (RFC 7162 §4 asks servers to take lines
of at least 8192 octets; Dovecot takes 64 KiB), literals and the octets of one command
(:mod:`framing`: small before login, checked against the state before any ``+``), APPEND up to
the message size limit and spooled to disk, FETCH output (:mod:`fetch`), nesting depth
(parser), failed logins per connection plus the shared throttle, connections in total and per
IP (counted before the TLS handshake on the implicit-TLS port), and the autologout timers
(§5.4: at least 30 minutes once authenticated; before login a fixed deadline from the
connection's start, ``ListenerConfig.preauth_timeout``, that NOOP and CAPABILITY do not
extend)."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import DatabaseError

from mailcore import events, metrics
from mailcore.protocols.common import implicit_tls
from mailcore.protocols.common.config import ListenerConfig
from mailcore.protocols.common.limits import ConnectionLimiter, Refusal, is_loopback
from mailcore.protocols.imap.commands import Reply, error_reply
from mailcore.protocols.imap.framing import Closed as _Closed
from mailcore.protocols.imap.framing import Framed, Framing
from mailcore.protocols.imap.handlers import Commands
from mailcore.protocols.imap.parser import (
    Append,
    BadCharset,
    ParseError,
    State,
    lookup,
    parse_command,
    parse_tag,
)

logger = logging.getLogger("correio.imap")


@dataclass(frozen=True)
class ImapOptions:
    """Per-listener knobs; tests pass their own in ``ListenerConfig.extra["imap"]``."""

    max_line: int = 64 * 1024
    max_literal: int = 64 * 1024  # a literal in any command but APPEND's message
    max_command: int = 256 * 1024  # all literals of one command (plus the message for APPEND)
    # Before login only LOGIN and AUTHENTICATE arguments: small literals, a small total.
    preauth_literal: int = 8 * 1024
    preauth_command: int = 16 * 1024
    spool_threshold: int = 1024 * 1024  # APPEND messages past this (per command) wait on disk
    max_append_total: int = 256 * 1024 * 1024  # all messages of one MULTIAPPEND (RFC 3502)
    autologout: float = 30 * 60.0
    idle_poll: float = 30.0  # re-check in IDLE even without an event (lost Redis, other hosts)
    max_bad_commands: int = 20
    # Whether LOGIN / AUTHENTICATE PLAIN are allowed without TLS from this peer IP.
    allow_plaintext: Callable[[str | None], bool] = field(default=is_loopback)


TLS_HANDSHAKE_TIMEOUT = 30.0

# The greeting of a connection that is not served (RFC 3501 §7.1.5: BYE as the greeting). A
# stalled loop is a temporary lack of resources (RFC 5530 §3 UNAVAILABLE), not the client's.
REFUSALS = {
    Refusal.TOO_MANY: b"* BYE Too many connections\r\n",
    Refusal.BUSY: b"* BYE [UNAVAILABLE] Server busy, try again later\r\n",
}


class ImapConnection(Framing, Commands):
    def __init__(self, reader, writer, config: ListenerConfig, options: ImapOptions,
                 tls_context, tls_active: bool):
        self.reader = reader
        self.writer = writer
        self.config = config
        self.options = options
        self.tls_context = tls_context
        self.tls_active = tls_active
        peer = writer.get_extra_info("peername")
        self.peer_ip = peer[0] if peer else None
        self.state = State.NOT_AUTHENTICATED
        self.mailbox = None
        self.selected = None
        self.failed_logins = 0
        self.bad_commands = 0
        self.client_id = None
        self.condstore = False  # RFC 7162 §3.1: once enabled, for the connection's life
        self.qresync = False
        self.utf8_accept = False  # RFC 6855 §3: ENABLE UTF8=ACCEPT, for the connection's life
        self.rev2 = False  # RFC 9051 §6.3.1: ENABLE IMAP4rev2, likewise
        self._out: list[bytes] = []
        self.pending_bytes = 0  # in _out, not yet written
        self._unsubscribe = None
        self._unwatch = None
        self._wakeup: asyncio.Event | None = None
        # RFC 3501 §5.4: before login, a deadline from the connection's start, not an idle
        # timer, so that NOOP or CAPABILITY every few seconds cannot hold a slot for ever.
        self.login_deadline = asyncio.get_running_loop().time() + config.preauth_timeout

    # --- output ---------------------------------------------------------------------------

    def send(self, data: str | bytes) -> None:
        data = data.encode("utf-8", "replace") if isinstance(data, str) else data
        self._out.append(data)
        self.pending_bytes += len(data)

    async def flush(self) -> None:
        if self._out:
            data = b"".join(self._out)
            self._out.clear()
            self.pending_bytes = 0
            self.writer.write(data)
        await self.writer.drain()

    async def write_large(self, data: bytes | memoryview, chunk: int = 64 * 1024) -> None:
        """Write a large literal in slices, waiting for the transport between them, so a
        FETCH's output never sits whole in the transport's buffer."""
        await self.flush()
        view = memoryview(data)
        for start in range(0, len(view), chunk):
            self.writer.write(view[start : start + chunk])
            await self.writer.drain()

    # --- input ----------------------------------------------------------------------------

    def read_timeout(self) -> float:
        if self.state is State.NOT_AUTHENTICATED:
            return max(0.0, self.login_deadline - asyncio.get_running_loop().time())
        return self.options.autologout

    async def read_line(self) -> bytes:
        try:
            return await asyncio.wait_for(self.reader.readuntil(b"\n"), self.read_timeout())
        except TimeoutError:
            self.send("* BYE Autologout; idle for too long\r\n")
            raise _Closed() from None
        except asyncio.LimitOverrunError:
            self.send("* BYE Line too long\r\n")
            raise _Closed() from None
        except (asyncio.IncompleteReadError, ConnectionError):
            raise _Closed() from None

    # --- events ---------------------------------------------------------------------------

    def subscribe_events(self, mailbox_id: int) -> None:
        loop = asyncio.get_running_loop()

        def on_event(event) -> None:  # called from another thread
            loop.call_soon_threadsafe(self._on_event, event)

        self._unsubscribe = events.subscribe(mailbox_id, on_event)

    def _on_event(self, event) -> None:
        sel = self.selected
        if sel is not None and event.folder_id == sel.folder.pk:
            if event.kind == "folders":
                sel.dirty = True
            elif event.modseq > sel.event_modseq:
                sel.event_modseq = event.modseq
            if sel.stale and self._wakeup is not None:
                self._wakeup.set()

    # --- STARTTLS and IDLE ----------------------------------------------------------------

    async def start_tls(self, tag: str) -> None:
        if self.reader._buffer:  # noqa: SLF001
            # Plaintext pipelined after STARTTLS would be read as if protected (CVE-2011-0411).
            self.send("* BYE Data after STARTTLS\r\n")
            raise _Closed()
        self.send(f"{tag} OK Begin TLS negotiation now\r\n")
        await self.flush()
        try:
            await self.writer.start_tls(
                self.tls_context, ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT
            )
        except (TimeoutError, OSError) as error:
            logger.info("STARTTLS failed from %s: %s", self.peer_ip, error)
            raise _Closed() from None
        self.tls_active = True

    async def idle(self, cmd) -> str:
        """IDLE (RFC 2177): report changes as they happen until the client sends DONE."""
        self._wakeup = asyncio.Event()
        self.send("+ idling\r\n")
        await self.send_updates(allow_expunge=True, force=True)
        await self.flush()
        reader_task = asyncio.ensure_future(self.read_line())
        try:
            while True:
                waiter = asyncio.ensure_future(self._wakeup.wait())
                done, _ = await asyncio.wait(
                    {reader_task, waiter}, timeout=self.options.idle_poll,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if reader_task in done:
                    waiter.cancel()
                    line = reader_task.result()
                    if line.strip().upper() != b"DONE":
                        raise Reply("BAD", "Expected DONE")
                    return "IDLE terminated"
                if waiter not in done:
                    waiter.cancel()
                self._wakeup.clear()
                await self.send_updates(allow_expunge=True, force=waiter not in done)
                await self.flush()
                if self.state is State.LOGOUT:
                    raise _Closed()
        finally:
            self._wakeup = None
            if not reader_task.done():
                reader_task.cancel()
            elif not reader_task.cancelled():
                reader_task.exception()  # retrieved: the connection is ending anyway

    # --- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        self.send(f"* OK [CAPABILITY {self.capabilities()}] {self.config.hostname} "
                  "Correio IMAP4rev1 ready\r\n")
        await self.flush()
        while self.state is not State.LOGOUT:
            framed = await self.read_command()
            if framed is None:
                await self.flush()
                continue
            try:
                await self.execute(framed)
            finally:
                framed.close()
            await self.flush()

    async def execute(self, framed: Framed) -> None:
        data = framed.data
        tag = parse_tag(data) or "*"
        try:
            cmd = parse_command(data, self.utf8_names)
        except BadCharset as error:
            self.send(f"{error.tag or tag} NO [BADCHARSET (UTF-8 US-ASCII)] {error}\r\n")
            return
        except ParseError as error:
            self.bad(error.tag or tag, str(error))
            return
        if framed.messages:
            # Each spooled message left an empty literal in its place: fill them in order. A
            # genuine empty message among them makes the counts differ, and is refused.
            empty = [m for m in cmd.messages if not m.message_size] if isinstance(
                cmd, Append) else []
            if len(empty) != len(framed.messages):
                self.bad(cmd.tag, "A large literal is only taken as APPEND's message")
                return
            for message, (spool, size) in zip(empty, framed.messages, strict=True):
                message.message, message.message_size = spool, size
        if self.state not in lookup(cmd.name, cmd.uid).states:
            self.bad(cmd.tag, f"{cmd.name} is not allowed in the {self.state.value} state")
            return
        handler = getattr(self, f"cmd_{cmd.name}")
        status, text = "OK", ""
        try:
            text = await metrics.timed("imap", cmd.name, handler(cmd))
        except Reply as reply:
            status, text = reply.status, reply.text
        except _Closed:
            raise
        except DatabaseError:
            logger.exception("database error in %s", cmd.name)
            status, text = "NO", "[UNAVAILABLE] Temporary failure; try again"
        except Exception as error:
            mapped = error_reply(error)
            if mapped is None:
                logger.exception("IMAP %s failed", cmd.name)
                status, text = "NO", "[SERVERBUG] Internal error"
            else:
                status, text = mapped
        if status == "BAD":
            self.bad_commands += 1
        if self.state is State.SELECTED and self.state is not State.LOGOUT:
            # §7.4.1: no EXPUNGE during FETCH, STORE, SEARCH (their UID forms may).
            allow = cmd.uid or cmd.name not in ("FETCH", "STORE", "SEARCH")
            await self.send_updates(allow_expunge=allow)
        if text:
            self.send(f"{cmd.tag} {status} {text}\r\n")
        if self.bad_commands >= self.options.max_bad_commands:
            self.send("* BYE Too many invalid commands\r\n")
            self.state = State.LOGOUT

    def bad(self, tag: str, text: str) -> None:
        self.bad_commands += 1
        self.send(f"{tag} BAD {text}\r\n")
        if self.bad_commands >= self.options.max_bad_commands:
            self.send("* BYE Too many invalid commands\r\n")
            self.state = State.LOGOUT

    def end_revoked(self) -> None:
        """The account's credentials were revoked (mailcore/protocols/common/revocation.py):
        say why and close; the reader then sees the end of input."""
        self.writer.write(b"* BYE Credentials changed or revoked; please log in again\r\n")
        self.writer.close()

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None


def _options(config: ListenerConfig) -> ImapOptions:
    return config.extra.get("imap") or ImapOptions()


async def _serve_client(reader, writer, config, options, tls_context, implicit, limiter,
                        handshakes, quiet_log):
    peer = writer.get_extra_info("peername")
    ip = peer[0] if peer else "?"
    refusal = limiter.admit(ip)
    if refusal is not None:
        # Counted before any TLS handshake: a flood of half-open handshakes on the implicit
        # port is refused like any other (no plaintext BYE there: the client expects TLS).
        if not implicit:
            writer.write(REFUSALS[refusal])
            try:
                await writer.drain()
            except ConnectionError:
                pass
        writer.close()
        return
    connection = None
    try:
        if implicit and not await implicit_tls.start_tls(
            writer, tls_context, handshakes, ip,
            min(config.tls_handshake_timeout, config.preauth_timeout),
        ):
            return
        connection = ImapConnection(reader, writer, config, options, tls_context, implicit)
        await connection.run()
    except _Closed:
        pass
    except (ssl.SSLError, ConnectionError, TimeoutError, asyncio.IncompleteReadError) as error:
        # The client ended TLS (or the connection) badly: its business, one quiet line.
        quiet_log.ended(ip, error)
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("IMAP connection from %s failed", ip)
    finally:
        limiter.release(ip)
        if connection is not None:
            connection.close()
            try:
                if connection._out:  # noqa: SLF001 - last words (BYE) before closing
                    await asyncio.wait_for(connection.flush(), 5)
            except (Exception, asyncio.CancelledError):
                pass
        writer.close()


async def start_servers(config: ListenerConfig) -> list[asyncio.Server]:
    """Bind ``imap_addr`` (STARTTLS) and ``imaps_addr`` (implicit TLS) when they are set."""
    options = _options(config)
    tls_context = config.server_tls_context
    servers = []
    limit = options.max_line + 2
    for addr, implicit in ((config.imap_addr, False), (config.imaps_addr, True)):
        if addr is None:
            continue
        if implicit and tls_context is None:
            logger.warning("IMAPS address set but no TLS certificate; not listening on %s", addr)
            continue
        limiter = ConnectionLimiter(config.max_connections, config.max_connections_per_ip,
                                    "imaps" if implicit else "imap")

        handshakes = implicit_tls.handshake_limiter(config, "imaps") if implicit else None
        quiet_log = implicit_tls.QuietLog(logger, "IMAPS" if implicit else "IMAP")

        def handler(reader, writer, implicit=implicit, limiter=limiter, handshakes=handshakes,
                    quiet_log=quiet_log):
            return _serve_client(reader, writer, config, options, tls_context, implicit,
                                 limiter, handshakes, quiet_log)

        # The implicit-TLS port, too, accepts plain TCP: the handshake starts once the
        # connection is counted and has a handshake slot (common/implicit_tls.py).
        server = await asyncio.start_server(handler, addr[0], addr[1], limit=limit)
        servers.append(server)
    return servers
