"""The POP3 listener: one asyncio session per connection, a thin state machine over the
service layer (RFC 1939; CAPA and response codes, RFC 2449; STLS, RFC 2595; AUTH PLAIN, RFC 5034;
[AUTH] and [SYS/TEMP], RFC 3206).

``start_servers`` binds ``config.pop3_addr`` (plain, with STLS when a certificate is configured)
and ``config.pop3s_addr`` (implicit TLS). Listener options that are POP3's own (timeouts, the
maildrop lease, the plaintext-password policy) come from ``config.extra["pop3"]``, a
:class:`Pop3Options`; the defaults follow the RFCs and ARCHITECTURE.md."""

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from mailcore import metrics
from mailcore.exceptions import AuthFailed, AuthThrottled, MaildropLocked, MessageGone
from mailcore.protocols.common import auth, implicit_tls, revocation
from mailcore.protocols.common.config import ListenerConfig
from mailcore.protocols.common.limits import ConnectionLimiter, Refusal, is_loopback
from mailcore.protocols.common.services import call_service
from mailcore.protocols.pop3.state import (
    COMMANDS,
    MAX_AUTH_LINE,
    MAX_COMMAND_LINE,
    Command,
    MessageList,
    Pop3Error,
    State,
    decode_sasl_plain,
    err,
    expect_args,
    multiline,
    ok,
    parse_command,
    parse_number,
    retr_response,
    top_response,
)
from mailcore.services import pop3

logger = logging.getLogger("correio.pop3")

# Anything longer than this without a line end is not a POP3 client: the connection is dropped.
MAX_STREAM_BUFFER = 64 * 1024
# A session whose client retrieves messages in order reads the next ones ahead in one query,
# up to this many messages and octets (bounding the memory a session holds).
READ_AHEAD_MESSAGES = 64
READ_AHEAD_OCTETS = 2 * 1024 * 1024
# Line-end conversion and byte-stuffing of a message larger than this run in a worker thread:
# on a 25 MiB message with bare LFs they take long enough to stall every door (issue 12).
OFF_LOOP_OCTETS = 256 * 1024
# The greeting of a connection that is not served (RFC 3206 §4 SYS/TEMP: a temporary problem
# of the server's, worth a retry).
REFUSALS = {
    Refusal.TOO_MANY: err("too many connections; try again later", "SYS/TEMP"),
    Refusal.BUSY: err("server busy; try again later", "SYS/TEMP"),
}


def tls_or_loopback(peer_ip: str | None, tls: bool) -> bool:
    """ARCHITECTURE.md: plaintext passwords only over TLS or from a loopback address."""
    return tls or is_loopback(peer_ip)


@dataclass(frozen=True)
class Pop3Options:
    # RFC 1939 §3: an inactivity autologout timer of at least 10 minutes.
    idle_timeout: float = 600.0
    # The maildrop lock's lease; a live session renews it every third of this.
    lease_seconds: float = pop3.DEFAULT_LEASE_SECONDS
    # Unknown, malformed or out-of-state commands tolerated before the connection is cut.
    max_bad_commands: int = 10
    # Failed logins in one connection before it is cut (the shared throttle counts them too).
    max_auth_failures: int = 3
    # (peer ip, connection is TLS) -> may USER/PASS and AUTH PLAIN be used?
    plaintext_allowed: Callable[[str | None, bool], bool] = tls_or_loopback


def options_of(config: ListenerConfig) -> Pop3Options:
    return config.extra.get("pop3") or Pop3Options()


# The one table from service errors to POP3 replies: (RFC 2449 §8 / RFC 3206 code, text).
# Looked up along the exception's class hierarchy, most specific first.
ERROR_REPLIES: dict[type[Exception], tuple[str | None, str]] = {
    AuthThrottled: ("SYS/TEMP", "too many failed logins; try again later"),
    AuthFailed: ("AUTH", "authentication failed"),
    MaildropLocked: ("IN-USE", "maildrop is locked by another POP3 session"),
    MessageGone: (None, "message was removed by another session"),
}
UNEXPECTED_REPLY = ("SYS/TEMP", "temporary server error; try again later")


def error_reply(exc: Exception) -> tuple[str | None, str]:
    for klass in type(exc).__mro__:
        if klass in ERROR_REPLIES:
            return ERROR_REPLIES[klass]
    logger.error("POP3 service call failed", exc_info=exc)
    return UNEXPECTED_REPLY


async def _format(func, raw: bytes, *args) -> list[bytes]:
    if len(raw) > OFF_LOOP_OCTETS:
        return await asyncio.to_thread(func, raw, *args)
    return func(raw, *args)


class Pop3Session:
    """One connection: the state (RFC 1939 §3), the login in progress and, once logged in, the
    locked maildrop."""

    def __init__(self, reader, writer, config: ListenerConfig, *, tls: bool):
        self.reader: asyncio.StreamReader = reader
        self.writer: asyncio.StreamWriter = writer
        self.config = config
        self.options = options_of(config)
        self.tls = tls
        peer = writer.get_extra_info("peername")
        self.peer_ip: str | None = peer[0] if peer else None
        self.state = State.AUTHORIZATION
        self.user: str | None = None
        self.auth_failures = 0
        self.bad_commands = 0
        self.maildrop: pop3.Maildrop | None = None
        self.messages: MessageList | None = None
        self.heartbeat: asyncio.Task | None = None
        self.unwatch = None
        self.closing = False
        self.last_retr = 0
        self.read_ahead: dict[int, bytes] = {}
        # Before login a deadline from the connection's start, not an idle timer (issue 12):
        # NOOP or CAPA every few seconds must not hold a connection slot for ever.
        self.login_deadline = asyncio.get_running_loop().time() + config.preauth_timeout

    # --- I/O -----------------------------------------------------------------------------

    async def send(self, *chunks: bytes) -> None:
        self.writer.writelines(chunks)
        if self.writer.transport.get_write_buffer_size():
            # A client that stops reading is idle too: it must not hold its session (and the
            # maildrop lock) forever.
            await asyncio.wait_for(self.writer.drain(), timeout=self.options.idle_timeout)

    def read_timeout(self) -> float:
        if self.state is State.AUTHORIZATION:
            return max(0.0, self.login_deadline - asyncio.get_running_loop().time())
        return self.options.idle_timeout

    async def read_line(self, limit: int) -> bytes | None:
        """The next line without its end; None when the session must end: end of input, the
        idle timer (RFC 1939 §3: close without a reply and without entering UPDATE), or a line
        far beyond any limit."""
        try:
            line = await asyncio.wait_for(self.reader.readuntil(b"\n"), timeout=self.read_timeout())
        except (TimeoutError, asyncio.IncompleteReadError):
            return None
        except asyncio.LimitOverrunError:
            await self.send(err("line too long"))
            return None
        if len(line) > limit:
            raise Pop3Error("line too long", bad_command=True)
        return line[:-2] if line.endswith(b"\r\n") else line[:-1]

    async def run(self) -> None:
        try:
            await self.send(ok(f"{self.config.hostname} Correio POP3 server ready"))
            while not self.closing:
                try:
                    line = await self.read_line(MAX_AUTH_LINE)
                    if line is None:
                        break
                    if len(line) + 2 > MAX_COMMAND_LINE and line[:5].upper() != b"AUTH ":
                        raise Pop3Error("line too long", bad_command=True)
                    await self.handle(parse_command(line))
                except Pop3Error as exc:
                    await self.refuse(exc)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            await self.cleanup()

    async def refuse(self, exc: Pop3Error) -> None:
        await self.send(exc.reply)
        if exc.bad_command:
            self.bad_commands += 1
            if self.bad_commands >= self.options.max_bad_commands:
                await self.send(err("too many bad commands; closing connection"))
                self.closing = True

    async def cleanup(self) -> None:
        if self.unwatch is not None:
            self.unwatch()
        if self.heartbeat is not None:
            self.heartbeat.cancel()
        if self.maildrop is not None:
            # Never reached UPDATE: nothing is deleted (RFC 1939 §6), the lock goes.
            maildrop, self.maildrop = self.maildrop, None
            try:
                await call_service(pop3.release_maildrop, maildrop.mailbox_id, maildrop.token)
            except Exception:
                logger.warning("could not release a maildrop lock; its lease will lapse",
                               exc_info=True)
        self.writer.close()  # sends what is buffered, then closes
        try:
            await asyncio.wait_for(self.writer.wait_closed(), timeout=self.options.idle_timeout)
        except TimeoutError:
            self.writer.transport.abort()  # the client stopped reading
        except (ConnectionError, ssl.SSLError):
            pass

    async def service(self, func, *args, **kwargs):
        """Call the service layer; its errors become ``-ERR`` replies through the one table."""
        try:
            return await call_service(func, *args, **kwargs)
        except Exception as exc:
            code, text = error_reply(exc)
            raise Pop3Error(text, code=code) from exc

    async def handle(self, command: Command) -> None:
        if command.verb not in COMMANDS[self.state]:
            raise Pop3Error(f"{command.verb} is not valid in this state", bad_command=True)
        await metrics.timed("pop3", command.verb, getattr(self, f"cmd_{command.verb}")(command))

    # --- AUTHORIZATION (RFC 1939 §4, §7; RFC 5034; RFC 2595) --------------------------------

    @property
    def plaintext_ok(self) -> bool:
        return self.options.plaintext_allowed(self.peer_ip, self.tls)

    def require_plaintext_ok(self) -> None:
        if not self.plaintext_ok:
            # RFC 2595 §2.1 / ARCHITECTURE.md: no cleartext passwords before STLS.
            raise Pop3Error("plaintext authentication disallowed without TLS; use STLS",
                            code="AUTH")

    def capabilities(self) -> list[str]:
        caps = ["TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE"]
        if self.state is State.AUTHORIZATION:
            if self.plaintext_ok:
                caps += ["USER", "SASL PLAIN"]
            if not self.tls and self.config.server_tls_context is not None:
                caps.append("STLS")
        caps.append("IMPLEMENTATION Correio")
        return caps

    async def cmd_CAPA(self, command: Command) -> None:
        expect_args(command, 0, 0)
        await self.send(multiline(ok("capability list follows"), self.capabilities()))

    async def cmd_NOOP(self, command: Command) -> None:
        expect_args(command, 0, 0)
        await self.send(ok())

    async def cmd_STLS(self, command: Command) -> None:
        expect_args(command, 0, 0)
        context = self.config.server_tls_context
        if self.tls:
            raise Pop3Error("already using TLS")
        if context is None:
            raise Pop3Error("TLS is not available")
        # Bytes sent after STLS but before the handshake would otherwise be read as if they had
        # come over TLS (the STARTTLS command injection of CVE-2011-0411); RFC 2595 §4 has the
        # client wait for this reply, so any such bytes mean an attack or a broken client.
        # Nothing can arrive between this check and start_tls, which pauses reading first.
        if self.reader._buffer:  # no public API tells whether input is pending
            await self.send(err("data after STLS; closing connection"))
            self.closing = True
            return
        self.writer.write(ok("begin TLS negotiation"))
        await self.writer.start_tls(context)
        self.tls = True
        self.user = None  # RFC 2595 §4: forget what was said before TLS

    async def cmd_USER(self, command: Command) -> None:
        self.require_plaintext_ok()
        name = command.rest.strip()
        if not name or " " in name:
            raise Pop3Error("USER needs one name", bad_command=True)
        self.user = name
        await self.send(ok("send PASS"))

    async def cmd_PASS(self, command: Command) -> None:
        self.require_plaintext_ok()
        if self.user is None:
            raise Pop3Error("send USER first", bad_command=True)
        # RFC 1939 §7: PASS has exactly one argument, so spaces belong to the password.
        user, self.user = self.user, None
        await self.login(user, command.rest)

    async def cmd_AUTH(self, command: Command) -> None:
        if not command.args:
            # Listing mechanisms with a bare AUTH predates RFC 5034 (RFC 1734) but clients
            # such as Outlook still send it.
            await self.send(multiline(ok(), ["PLAIN"] if self.plaintext_ok else []))
            return
        args = expect_args(command, 1, 2)
        if args[0].upper() != "PLAIN":
            raise Pop3Error("unsupported authentication mechanism")
        self.require_plaintext_ok()
        if len(args) == 2:
            response = "" if args[1] == "=" else args[1]  # RFC 5034 §4: "=" is empty
        else:
            await self.send(b"+ \r\n")
            line = await self.read_line(MAX_AUTH_LINE)
            if line is None:
                self.closing = True
                return
            response = line.decode("ascii", "replace")
            if response.strip() == "*":
                raise Pop3Error("authentication cancelled")  # RFC 5034 §4
        try:
            user, password = decode_sasl_plain(response)
        except Pop3Error as exc:
            await self.auth_failed(exc)
            return
        await self.login(user, password)

    async def auth_failed(self, exc: Pop3Error) -> None:
        self.auth_failures += 1
        await self.send(exc.reply)
        if self.auth_failures >= self.options.max_auth_failures:
            await self.send(err("too many failed logins; closing connection", "AUTH"))
            self.closing = True

    async def login(self, address: str, password: str) -> None:
        """Check the credentials, then lock and snapshot the maildrop (RFC 1939 §4). Either
        failure leaves the session in AUTHORIZATION."""
        try:
            with metrics.login_attempt("pop3"):
                login = await auth.authenticate(address, password, self.peer_ip)
        except Exception as error:
            code, text = error_reply(error)
            await self.auth_failed(Pop3Error(text, code=code))
            return
        maildrop = await self.service(
            pop3.open_maildrop,
            login.mailbox.pk,
            lease_seconds=self.options.lease_seconds,
            holder=f"pop3 {self.peer_ip}",
        )
        self.maildrop = maildrop
        self.messages = MessageList(
            uids=[m.uid for m in maildrop.messages],
            sizes=[m.size for m in maildrop.messages],
            unique_ids=[maildrop.unique_id(m.uid) for m in maildrop.messages],
        )
        self.state = State.TRANSACTION
        self.heartbeat = asyncio.create_task(self.keep_lock())
        # Revoked credentials end the session without UPDATE: nothing is deleted (RFC 1939 §6).
        self.unwatch = await revocation.watch_session(login, self.writer.close)
        total = sum(self.messages.sizes)
        await self.send(ok(f"maildrop has {len(self.messages.uids)} messages ({total} octets)"))

    async def keep_lock(self) -> None:
        """Renew the maildrop lease while the session lives (its idle timer bounds that)."""
        maildrop = self.maildrop
        while True:
            await asyncio.sleep(self.options.lease_seconds / 3)
            try:
                held = await call_service(
                    pop3.renew_maildrop,
                    maildrop.mailbox_id,
                    maildrop.token,
                    self.options.lease_seconds,
                )
            except Exception:
                logger.warning("could not renew a maildrop lease", exc_info=True)
                continue
            if not held:
                logger.warning("POP3 session for mailbox %s lost its lock", maildrop.mailbox_id)
                return

    # --- TRANSACTION (RFC 1939 §5, §7) -------------------------------------------------------

    async def cmd_STAT(self, command: Command) -> None:
        expect_args(command, 0, 0)
        await self.send(self.messages.stat())

    async def cmd_LIST(self, command: Command) -> None:
        args = expect_args(command, 0, 1)
        await self.send(self.messages.list_one(args[0]) if args else self.messages.list_all())

    async def cmd_UIDL(self, command: Command) -> None:
        args = expect_args(command, 0, 1)
        await self.send(self.messages.uidl_one(args[0]) if args else self.messages.uidl_all())

    async def cmd_DELE(self, command: Command) -> None:
        (arg,) = expect_args(command, 1, 1)
        await self.send(self.messages.delete(arg))

    async def cmd_RSET(self, command: Command) -> None:
        expect_args(command, 0, 0)
        await self.send(self.messages.reset())

    async def load(self, n: int, *, sequential: bool) -> bytes:
        """Message n's bytes. When the client reads in order, the following messages come in
        the same query and wait in ``read_ahead`` for their RETR."""
        uid = self.messages.uid(n)
        raw = self.read_ahead.pop(uid, None)
        if raw is not None:
            return raw
        self.read_ahead.clear()
        folder_id = self.maildrop.folder_id
        if not sequential:
            return await self.service(pop3.load_message, folder_id, uid)
        uids, octets = [], 0
        for m in range(n, len(self.messages.uids) + 1):
            if m in self.messages.deleted:
                continue
            octets += self.messages.sizes[m - 1]
            if uids and (octets > READ_AHEAD_OCTETS or len(uids) >= READ_AHEAD_MESSAGES):
                break
            uids.append(self.messages.uid(m))
        loaded = await self.service(pop3.load_messages, folder_id, uids)
        if uid not in loaded:
            code, text = error_reply(MessageGone())
            raise Pop3Error(text, code=code)
        raw = loaded.pop(uid)
        self.read_ahead = loaded
        return raw

    async def cmd_RETR(self, command: Command) -> None:
        (arg,) = expect_args(command, 1, 1)
        n = self.messages.number(arg)
        raw = await self.load(n, sequential=n == self.last_retr + 1 and n > 1)
        self.last_retr = n
        await self.send(*await _format(retr_response, raw))

    async def cmd_TOP(self, command: Command) -> None:
        arg, count = expect_args(command, 2, 2)
        n = self.messages.number(arg)
        lines = parse_number(count, "line count")
        uid = self.messages.uid(n)
        raw = self.read_ahead.get(uid)
        if raw is None:
            raw = await self.service(pop3.load_message, self.maildrop.folder_id, uid)
        await self.send(*await _format(top_response, raw, lines))

    # --- QUIT and UPDATE (RFC 1939 §4, §6) ----------------------------------------------------

    async def cmd_QUIT(self, command: Command) -> None:
        self.closing = True
        if self.state is State.AUTHORIZATION:
            await self.send(ok("bye"))
            return
        self.state = State.UPDATE
        if self.heartbeat is not None:
            self.heartbeat.cancel()
        try:
            await call_service(pop3.close_maildrop, self.maildrop, self.messages.deleted_uids())
        except Exception as exc:
            code, _text = error_reply(exc)
            await self.send(err("some deleted messages not removed", code))
            return
        self.maildrop = None
        left = len(self.messages.live())
        await self.send(ok(f"{self.config.hostname} signing off ({left} messages left)"))


async def start_servers(config: ListenerConfig) -> list[asyncio.Server]:
    """Bind the POP3 (STLS) and POP3S (implicit TLS) listeners the config asks for."""
    servers = []
    if config.pop3_addr:
        servers.append(await _start(config, config.pop3_addr, implicit_tls_port=False))
    if config.pop3s_addr:
        if config.server_tls_context is None:
            logger.warning("POP3S not started: no TLS certificate configured")
        else:
            servers.append(await _start(config, config.pop3s_addr, implicit_tls_port=True))
    return servers


async def _start(config: ListenerConfig, addr: tuple[str, int], *, implicit_tls_port: bool):
    limiter = ConnectionLimiter(config.max_connections, config.max_connections_per_ip,
                                "pop3s" if implicit_tls_port else "pop3")
    handshakes = implicit_tls.handshake_limiter(config, "pop3s") if implicit_tls_port else None
    quiet_log = implicit_tls.QuietLog(logger, "POP3S" if implicit_tls_port else "POP3")

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        ip = peer[0] if peer else ""
        refusal = limiter.admit(ip)
        if refusal is not None:
            # Counted before any TLS handshake: half-open handshakes on the implicit-TLS port
            # are refused like other connections (no plaintext reply there).
            if not implicit_tls_port:
                writer.write(REFUSALS[refusal])
            writer.close()
            return
        try:
            if implicit_tls_port and not await implicit_tls.start_tls(
                writer, config.server_tls_context, handshakes, ip,
                min(config.tls_handshake_timeout, config.preauth_timeout),
            ):
                return
            await Pop3Session(reader, writer, config, tls=implicit_tls_port).run()
        except (ssl.SSLError, ConnectionError, TimeoutError) as error:
            # A client-side TLS abort is the client's business: one quiet line, no traceback.
            quiet_log.ended(ip, error)
            writer.close()
        finally:
            limiter.release(ip)

    host, port = addr
    # The implicit-TLS port accepts plain TCP; the handshake starts once the connection is
    # counted (above).
    return await asyncio.start_server(on_connect, host, port, limit=MAX_STREAM_BUFFER)
