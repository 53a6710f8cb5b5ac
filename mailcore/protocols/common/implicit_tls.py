"""Implicit TLS (IMAPS 993, POP3S 995, submissions 465; RFC 8314 §3) with the connection counted
before the handshake and the handshakes in progress bounded (issue 12).

asyncio's ``create_server(ssl=...)`` runs the whole handshake before the protocol meets the
client, so limits kept by the protocol count only clients that finished it: connections that
send half a ClientHello and wait each hold a TLS object, its buffers and a timer, uncounted,
until the handshake deadline. Here every implicit-TLS door accepts plain TCP, counts the
connection (``ConnectionLimiter``), takes a handshake slot (``HandshakeLimiter``: per client
address and in total) and only then starts TLS, with a deadline; the slot is given back when
the handshake ends, whichever way. Over a bound the connection is closed at once, without a
reply (the client expects TLS, not plaintext) and before any TLS work.

Stream doors (IMAP, POP3, on ``asyncio.start_server``) call :func:`start_tls`; aiosmtpd's SMTP
protocol is served through :class:`ImplicitTLSGate`, which hands it the TLS transport once the
handshake is done."""

import asyncio
import logging
import ssl
import time
from collections.abc import Callable

from mailcore.protocols.common.limits import ConnectionLimiter, HandshakeLimiter

# Bytes a client may send after its handshake before the protocol takes the connection over
# (a server-first protocol's client should send none).
_EARLY_DATA_LIMIT = 64 * 1024


class QuietLog:
    """One INFO line per connection a client ended badly (a TLS abort, a reset), at most
    ``burst`` lines per ``period`` seconds per listener, then one line with how many were left
    out. A flood of aborted handshakes would otherwise write hundreds of lines at once, and
    formatting and writing them is work on the loop."""

    def __init__(self, log: logging.Logger, what: str, burst: int = 20, period: float = 10.0):
        self.log = log
        self.what = what
        self.burst = burst
        self.period = period
        self._window_start = float("-inf")
        self._lines = 0
        self._left_out = 0

    def ended(self, ip: str, error: BaseException) -> None:
        now = time.monotonic()
        if now - self._window_start >= self.period:
            if self._left_out:
                self.log.info("%s: %d more connections ended badly in %.0f s (not logged)",
                              self.what, self._left_out, self.period)
            self._window_start, self._lines, self._left_out = now, 0, 0
        if self._lines < self.burst:
            self._lines += 1
            self.log.info("%s connection from %s ended: %s", self.what, ip,
                          error or type(error).__name__)
        else:
            self._left_out += 1


def handshake_limiter(config, listener: str) -> HandshakeLimiter:
    return HandshakeLimiter(config.max_tls_handshakes, config.max_tls_handshakes_per_ip, listener)


async def start_tls(writer: asyncio.StreamWriter, context: ssl.SSLContext,
                    handshakes: HandshakeLimiter, ip: str, timeout: float) -> bool:
    """Upgrade a counted stream connection to TLS as its server. False (and the connection
    closed) when the handshake bounds are full; handshake failures and the deadline
    (``ConnectionAbortedError``) raise, and the door logs them quietly."""
    if not handshakes.acquire(ip):
        writer.close()
        return False
    try:
        await writer.start_tls(context, ssl_handshake_timeout=timeout)
    finally:
        handshakes.release(ip)
    return True


class ImplicitTLSGate(asyncio.Protocol):
    """The plain-TCP protocol of an implicit-TLS listener whose real protocol is an
    ``asyncio.Protocol`` (aiosmtpd's SMTP). ``make_protocol(ip)`` builds that protocol for a
    connection already counted in ``limiter``: from then on the protocol owns the count and
    releases it when its connection is lost; until then the gate does."""

    def __init__(self, *, make_protocol: Callable[[str], asyncio.Protocol],
                 limiter: ConnectionLimiter, handshakes: HandshakeLimiter,
                 context: ssl.SSLContext, timeout: float, quiet_log: QuietLog):
        self._make_protocol = make_protocol
        self._limiter = limiter
        self._handshakes = handshakes
        self._context = context
        self._timeout = timeout
        self._quiet_log = quiet_log
        self._ip = ""
        self._transport: asyncio.Transport | None = None
        self._inner: asyncio.Protocol | None = None
        self._early: list[bytes] = []
        self._early_size = 0
        self._eof = False
        self._lost = False
        self._task: asyncio.Task | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self._ip = str(peer[0]) if peer else "unknown"
        self._transport = transport
        if self._limiter.admit(self._ip) is not None:
            transport.close()
            self._lost = True
            return
        if not self._handshakes.acquire(self._ip):
            self._limiter.release(self._ip)
            transport.close()
            self._lost = True
            return
        self._task = asyncio.get_running_loop().create_task(self._handshake())

    async def _handshake(self) -> None:
        loop = asyncio.get_running_loop()
        transport = self._transport
        try:
            if self._lost:  # gone before the handshake could start
                tls = None
            else:
                tls = await loop.start_tls(transport, self, self._context, server_side=True,
                                           ssl_handshake_timeout=self._timeout)
        except (OSError, EOFError) as error:
            # A client that aborts or stalls its handshake: its business, one quiet line
            # (ssl.SSLError and the deadline's ConnectionAbortedError are OSErrors).
            self._quiet_log.ended(self._ip, error)
            tls = None
        except asyncio.CancelledError:
            transport.close()
            self._limiter.release(self._ip)
            raise
        finally:
            self._handshakes.release(self._ip)
        if tls is None or self._lost:
            if tls is not None:
                tls.close()
            transport.close()
            self._limiter.release(self._ip)
            return
        inner = self._make_protocol(self._ip)
        self._inner = inner
        tls.set_protocol(inner)
        inner.connection_made(tls)
        if self._early:
            inner.data_received(b"".join(self._early))
            self._early.clear()
        if self._eof and not inner.eof_received():
            tls.close()

    # Until the hand-over, the TLS layer talks to the gate: keep what arrives for the protocol.

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)
            return
        self._early_size += len(data)
        if self._early_size > _EARLY_DATA_LIMIT:
            self._transport.close()
            return
        self._early.append(data)

    def eof_received(self) -> bool | None:
        if self._inner is not None:
            return self._inner.eof_received()
        self._eof = True
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self._inner is not None:
            self._inner.connection_lost(exc)
            return
        self._lost = True

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()
