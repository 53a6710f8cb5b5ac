"""``CorreioSMTP``: aiosmtpd's SMTP state machine with Correio's replies and limits.

aiosmtpd (>= 1.4.6: 1.4.5 fixed SMTP smuggling, 1.4.6 plaintext injected before STARTTLS) parses
commands and runs the TLS upgrade; this subclass replaces what its defaults get wrong for a
public MX: every reply carries an enhanced status code (RFC 2034, since we advertise
ENHANCEDSTATUSCODES), an unexpected error gives 451 4.3.0 without internals (aiosmtpd's default
is a permanent 500 quoting the exception), commands per session are capped, connections are
counted per IP and in total (421), sessions have an idle timer and a total time limit, clients
collecting too many errors are cut off, and DATA is read with bounded memory (spooled to a temporary file past
a threshold, a bounded number of messages in progress per client address): only
``<CRLF>.<CRLF>`` ends it (RFC 5321 §4.1.1.4), so bare LF, bare CR and ``<LF>.<LF>`` variants
(the CVE-2023-51764 family) stay inside the one message.

The policy (``ListenerPolicy``) makes the same class serve the MX port and, with AUTH and relay
enabled, the submission ports; handler hooks (``handle_RCPT``, ``handle_DATA``...) do the
service calls.

The aiosmtpd internals this class reaches (``_call_handler_hook``, ``_reader._buffer``...) are
listed, each with its reason, in :mod:`mailcore.protocols.smtp.aiosmtpd_private`; add any new
one there (a test checks)."""

import asyncio
import collections
import logging
import re
from enum import Enum

from aiosmtpd.smtp import MISSING, SMTP, Envelope, syntax

from mailcore.protocols.common.config import ListenerConfig
from mailcore.protocols.common.limits import ConnectionLimiter, PerKeyLimiter, Refusal
from mailcore.protocols.smtp.policy import ListenerPolicy, SMTPLimits
from mailcore.protocols.smtp.replies import reply_for
from mailcore.protocols.smtp.spool import DataSpool, delivery_budget

logger = logging.getLogger("correio.smtp")

# RFC 1870 §3 and RFC 6531 §3.4: extensions lengthen the MAIL command line (SIZE=, BODY=,
# SMTPUTF8); RFC 5321 §4.5.3.1.4 gives the base of 512 octets.
MAIL_EXTRA_LENGTH = 26 + 14 + 10

# aiosmtpd's built-in replies that our overrides do not replace, with enhanced status codes.
_BUILTIN_REPLIES = {
    "500 Command line too long": "500 5.5.2 Error: line too long",
    "500 Error: bad syntax": "500 5.5.2 Error: bad syntax",
    "500 Error: strict ASCII mode": "500 5.5.2 Error: bad syntax",
    "554 Command refused due to lack of security": "554 5.7.0 Error: TLS handshake failed",
    "530 Must issue a STARTTLS command first": "530 5.7.0 Error: must issue a STARTTLS first",
    "220 Ready to start TLS": "220 2.0.0 Ready to start TLS",
    "503 Already authenticated": "503 5.5.1 Error: already authenticated",
    "501 Not enough value": "501 5.5.4 Syntax: AUTH mechanism [initial-response]",
    "501 Too many values": "501 5.5.4 Syntax: AUTH mechanism [initial-response]",
}
# The greeting of a connection that is not served (RFC 5321 §3.1: 421 and close). Over a
# connection limit is the client's doing, as Postfix words it (4.7.0, a policy refusal); a
# stalled event loop is ours (RFC 3463 §3.4: X.3.2 "system not accepting network messages").
REFUSALS = {
    Refusal.TOO_MANY: "421 4.7.0 {} Error: too many connections, try again later",
    Refusal.BUSY: "421 4.3.2 {} Service busy, try again later",
}
_UNRECOGNISED = re.compile(r'500 Error: command ".*" not recognized\Z', re.S)
UNRECOGNISED_REPLY = "500 5.5.2 Error: command not recognized"
_SEND_AT_ONCE = {b"220", b"221", b"334", b"354", b"421"}
# The usual path, <local@domain> with a dot-atom local part and a plain domain, parsed without
# the email package's full RFC 5322 parser; anything else goes through aiosmtpd's _getaddr.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_PATH = re.compile(
    rf"<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>(?:[ \t](.*))?\Z", re.S
)

# RFC 5321 §4.1.2: a path and its parameters are printable characters. A control character
# (NUL above all) is refused before it can reach a log, a header or the database; TAB, which
# some clients put between parameters, is refused inside the address only.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
CONTROL_REPLY = "501 5.5.2 Error: control character in command"


def _has_control(rest: str) -> bool:
    """``rest`` is the path and its parameters: no control character, and no TAB in the path
    (up to its closing bracket, or its end without one)."""
    close = rest.find(">")
    path = rest[: close + 1] if close >= 0 else rest.split(" ", 1)[0]
    return bool(_CONTROL.search(rest)) or "\t" in path


def _is_utf8(text: str) -> bool:
    """Arguments arrive decoded with surrogateescape; invalid UTF-8 shows as surrogates."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class CorreioEnvelope(Envelope):
    """aiosmtpd's envelope plus where the message goes, as resolved at RCPT time."""

    def __init__(self) -> None:
        super().__init__()
        self.mailbox_ids: list[int] = []
        self.remote: list[str] = []


class _Data(Enum):
    OK = "ok"
    TOO_LONG = "500 5.5.2 Error: line too long"
    TOO_BIG = "552 5.3.4 Error: message too big"


class CorreioSMTP(SMTP):
    def __init__(
        self,
        handler,
        *,
        config: ListenerConfig,
        policy: ListenerPolicy,
        limits: SMTPLimits,
        limiter: ConnectionLimiter,
        data_limiter: PerKeyLimiter | None = None,
        counted_ip: str | None = None,
        **kwargs,
    ):
        tls_context = config.server_tls_context if policy.starttls else None
        # Read by aiosmtpd's __init__ to size its stream reader: no line is buffered past it.
        self.line_length_limit = limits.data_line
        super().__init__(
            handler,
            data_size_limit=config.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=config.hostname,
            ident="ESMTP Correio",
            tls_context=None if policy.implicit_tls else tls_context,
            timeout=limits.idle_timeout,
            auth_required=policy.require_auth,
            command_call_limit=limits.call_limits(),
            **kwargs,
        )
        self.policy = policy
        self.limits = limits
        self.limiter = limiter
        self.data_limiter = data_limiter or PerKeyLimiter(limits.max_data_per_ip)
        # aiosmtpd keeps these on the class and grows them at every EHLO; ours are fixed.
        self.command_size_limit = limits.command_line
        self.command_size_limits = collections.defaultdict(lambda: limits.command_line)
        self.command_size_limits["MAIL"] = limits.command_line + MAIL_EXTRA_LENGTH
        # Set when the connection was counted before this protocol met it (implicit TLS:
        # common/implicit_tls.py counts it before the handshake); it is released here.
        self._counted_ip = counted_ip
        self.peer_ip: str | None = None
        self.errors = 0
        self._rejected = False
        self._session_timer: asyncio.TimerHandle | None = None
        self._replies: list[bytes] = []
        # How often incoming DATA restarts the idle timer (not per packet: timers cost).
        self._reset_every = min(1.0, limits.idle_timeout / 4)

    # --- Connection life ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._original_transport is None and self.peer_ip is None:
            peer = transport.get_extra_info("peername")
            ip = self._counted_ip or (str(peer[0]) if peer else "unknown")
            refusal = None if self._counted_ip else self.limiter.admit(ip)
            if refusal is not None:
                # RFC 5321 §3.1: a server that cannot serve now answers 421 and closes.
                self._rejected = True
                transport.write(REFUSALS[refusal].format(self.hostname).encode() + b"\r\n")
                transport.close()
                return
            self.peer_ip = ip
            self._session_timer = self.loop.call_later(
                self.limits.session_timeout, self._drop, "421 4.4.2 {} Error: session too long"
            )
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._rejected:
            return
        if self.peer_ip is not None:
            self.limiter.release(self.peer_ip)
            self.peer_ip = None
        if self._session_timer is not None:
            self._session_timer.cancel()
        super().connection_lost(error)

    def eof_received(self) -> bool | None:
        if self._rejected:
            return False
        return super().eof_received()

    def _timeout_cb(self) -> None:
        # RFC 5321 §4.5.3.2.7 idle timeout; tell the client why before closing.
        self._drop("421 4.4.2 {} Error: timeout exceeded")

    def _drop(self, reply: str) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        logger.info("%s: %s", self.peer_ip, reply.format(self.hostname))
        self._replies.append(reply.format(self.hostname).encode() + b"\r\n")
        transport.write(b"".join(self._replies))
        self._replies.clear()
        transport.close()

    def _create_envelope(self) -> CorreioEnvelope:
        return CorreioEnvelope()

    @property
    def is_tls(self) -> bool:
        return self._tls_protocol is not None or self.policy.implicit_tls

    # --- Replies -------------------------------------------------------------------------------

    async def push(self, status):
        """Send a reply. Replies are held while more pipelined commands are already buffered
        and sent together when the input runs dry (RFC 2920 §3.2, as Postfix does): one packet
        instead of one per command. Replies the client must see before it sends more (354,
        TLS, AUTH challenges, closing) go at once."""
        if isinstance(status, str):
            status = _BUILTIN_REPLIES.get(status, status)
            if _UNRECOGNISED.match(status):
                status = UNRECOGNISED_REPLY
            data = status.encode("utf-8")
        else:
            data = status
        self._replies.append(data + b"\r\n")
        if data[:3] in _SEND_AT_ONCE or b"\n" not in self._reader._buffer:
            await self.flush_replies()
        if data[:1] == b"5":
            self.errors += 1
            if self.errors >= self.limits.max_errors and self.transport is not None:
                self._drop("421 4.7.0 {} Error: too many errors")
                if self._handler_coroutine is not None:
                    self._handler_coroutine.cancel()

    async def flush_replies(self) -> None:
        if self._replies:
            self._writer.write(b"".join(self._replies))
            self._replies.clear()
            await self._writer.drain()

    async def handle_exception(self, error: Exception) -> str:
        # A hook failed: a temporary failure without internals (aiosmtpd would answer 500 and
        # quote the exception).
        return reply_for(error)

    async def check_helo_needed(self, helo: str = "HELO") -> bool:
        if not self.session.host_name:
            await self.push("503 5.5.1 Error: send HELO/EHLO first")
            return True
        return False

    # --- Commands ------------------------------------------------------------------------------

    @syntax("HELO hostname")
    async def smtp_HELO(self, hostname: str | None):
        if not hostname:
            await self.push("501 5.5.4 Syntax: HELO hostname")
            return
        self._set_rset_state()
        self.session.extended_smtp = False
        self.session.host_name = hostname
        await self.push(f"250 {self.hostname}")

    @syntax("EHLO hostname")
    async def smtp_EHLO(self, hostname: str | None):
        if not hostname:
            await self.push("501 5.5.4 Syntax: EHLO hostname")
            return
        # RFC 5321 §4.1.4: EHLO resets any transaction in progress, like RSET.
        self._set_rset_state()
        self.session.extended_smtp = True
        self.session.host_name = hostname
        lines = [self.hostname, "PIPELINING", f"SIZE {self.data_size_limit}", "8BITMIME",
                 "SMTPUTF8", "ENHANCEDSTATUSCODES"]
        if self.tls_context and not self.is_tls:
            lines.append("STARTTLS")
        if self.auth_advertised():
            lines.append("AUTH " + " ".join(sorted(self._auth_methods)))
        lines.append("HELP")
        await self.push(
            "\r\n".join(f"250-{line}" for line in lines[:-1]) + f"\r\n250 {lines[-1]}"
        )

    def auth_advertised(self) -> bool:
        """Whether EHLO lists AUTH now. Submission overrides this (over TLS or loopback)."""
        return self.policy.offer_auth and (self.is_tls or not self._auth_require_tls)

    @syntax("NOOP [ignored]")
    async def smtp_NOOP(self, arg: str | None):
        # RFC 5321 §4.1.1.9: any argument is ignored.
        await self.push("250 2.0.0 OK")

    @syntax("RSET")
    async def smtp_RSET(self, arg: str | None):
        if arg:
            await self.push("501 5.5.4 Syntax: RSET")
            return
        self._set_rset_state()
        await self.push("250 2.0.0 OK")

    @syntax("QUIT")
    async def smtp_QUIT(self, arg: str | None):
        await self.push("221 2.0.0 Bye")
        self._handler_coroutine.cancel()
        self.transport.close()

    @syntax("VRFY <address>")
    async def smtp_VRFY(self, arg: str | None):
        if not arg:
            await self.push("501 5.5.4 Syntax: VRFY <address>")
            return
        # RFC 5321 §3.5.3: 252 neither confirms nor denies; users are never revealed.
        await self.push("252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery")

    async def smtp_EXPN(self, arg: str | None):
        await self.push("502 5.5.1 Error: EXPN not supported")

    @syntax("HELP [command]")
    async def smtp_HELP(self, arg: str | None):
        if arg:
            method = self._smtp_methods.get(arg.upper())
            if method is not None and self._syntax_available(method):
                text = method.__smtp_syntax__
                if self.session.extended_smtp and method.__smtp_syntax_extended__:
                    text += method.__smtp_syntax_extended__
                await self.push(f"214 2.0.0 Syntax: {text}")
                return
            await self.push("504 5.5.1 Error: no help for that command")
            return
        names = sorted(
            name for name, method in self._smtp_methods.items() if self._syntax_available(method)
        )
        await self.push("214 2.0.0 Supported commands: " + " ".join(names))

    def _syntax_available(self, method) -> bool:
        if method.__name__ == "smtp_AUTH" and not self.policy.offer_auth:
            return False
        return super()._syntax_available(method)

    @syntax("STARTTLS", when="tls_context")
    async def smtp_STARTTLS(self, arg: str | None):
        if not self.tls_context:
            await self.push("454 4.7.0 Error: TLS not available")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: STARTTLS")
            return
        if self.is_tls:
            await self.push("503 5.5.1 Error: TLS already active")
            return
        await super().smtp_STARTTLS(arg)

    @syntax("AUTH <mechanism>")
    async def smtp_AUTH(self, arg: str | None):
        if not self.policy.offer_auth:
            await self.push("503 5.5.1 Error: authentication not enabled")
            return
        await super().smtp_AUTH(arg)

    @syntax("MAIL FROM:<address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str | None):
        if await self.check_helo_needed() or await self.check_auth_needed("MAIL"):
            return
        syntaxerr = "501 5.5.4 Syntax: MAIL FROM:<address>"
        if self.envelope.mail_from is not None:
            await self.push("503 5.5.1 Error: nested MAIL command")
            return
        rest = self._strip_command_keyword("FROM:", arg or "")
        if rest is None:
            await self.push(syntaxerr)
            return
        address, params_text = self._parse_path(rest)
        if _has_control(rest):
            await self.push(CONTROL_REPLY)
            return
        if address is None:
            await self.push("553 5.1.7 Error: malformed sender address")
            return
        if not address:
            await self.push(syntaxerr)
            return
        if address == "<>":
            address = ""  # the null reverse-path of bounces (RFC 5321 §4.5.5)
        elif not _is_utf8(address):
            await self.push("553 5.1.7 Error: malformed sender address")
            return
        if params_text and not self.session.extended_smtp:
            await self.push(syntaxerr)
            return
        options = params_text.upper().split()
        params = self._getparams(options)
        if params is None:
            await self.push(syntaxerr)
            return
        # RFC 6152: BODY=8BITMIME or 7BIT; BINARYMIME (RFC 3030) is not offered.
        if params.pop("BODY", "7BIT") not in ("7BIT", "8BITMIME"):
            await self.push("501 5.5.4 Error: BODY can only be 7BIT or 8BITMIME")
            return
        smtputf8 = params.pop("SMTPUTF8", False)
        if smtputf8 is not False and smtputf8 is not True:
            await self.push("501 5.5.4 Error: SMTPUTF8 takes no value")
            return
        size = params.pop("SIZE", None)
        if size is not None:
            if size is True or not size.isdigit():
                await self.push(syntaxerr)
                return
            # RFC 1870 §6.1: refuse a declared size over the limit before any data is sent.
            if self.data_size_limit and int(size) > self.data_size_limit:
                await self.push("552 5.3.4 Error: message size exceeds fixed maximum message size")
                return
        if self.policy.offer_auth:
            # RFC 4954 §5: a server offering AUTH accepts (and may ignore) MAIL's AUTH=.
            params.pop("AUTH", None)
        if params:
            await self.push("555 5.5.4 Error: MAIL parameters not recognized or not implemented")
            return
        if not smtputf8 and not address.isascii():
            # RFC 6531 §3.7.4.1: a non-ASCII address needs the SMTPUTF8 parameter.
            await self.push("553 5.6.7 Error: non-ASCII address requires SMTPUTF8")
            return
        self.envelope.smtp_utf8 = bool(smtputf8)
        status = await self._call_handler_hook("MAIL", address, options)
        if status is MISSING:
            self.envelope.mail_from = address
            self.envelope.mail_options.extend(options)
            status = "250 2.1.0 OK"
        await self.push(status)

    def _parse_path(self, text: str) -> tuple[str | None, str]:
        match = _SIMPLE_PATH.match(text)
        if match:
            return match.group(1), match.group(2) or ""
        address, rest = self._getaddr(text)
        return address, rest or ""

    @syntax("RCPT TO:<address>", extended=" [SP <mail-parameters>]")
    async def smtp_RCPT(self, arg: str | None):
        if await self.check_helo_needed() or await self.check_auth_needed("RCPT"):
            return
        if self.envelope.mail_from is None:
            await self.push("503 5.5.1 Error: need MAIL command")
            return
        syntaxerr = "501 5.5.4 Syntax: RCPT TO:<address>"
        rest = self._strip_command_keyword("TO:", arg or "")
        if rest is None:
            await self.push(syntaxerr)
            return
        address, params_text = self._parse_path(rest)
        if _has_control(rest):
            await self.push(CONTROL_REPLY)
            return
        if address is None:
            await self.push("553 5.1.3 Error: malformed recipient address")
            return
        if not address or address == "<>":
            await self.push(syntaxerr)
            return
        if not _is_utf8(address):
            await self.push("553 5.1.3 Error: malformed recipient address")
            return
        if params_text and not self.session.extended_smtp:
            await self.push(syntaxerr)
            return
        options = params_text.upper().split()
        params = self._getparams(options)
        if params is None:
            await self.push(syntaxerr)
            return
        if params:  # no RCPT extension (DSN's NOTIFY, ORCPT) is advertised
            await self.push("555 5.5.4 Error: RCPT parameters not recognized or not implemented")
            return
        if not self.envelope.smtp_utf8 and not address.isascii():
            await self.push("553 5.6.7 Error: non-ASCII address requires SMTPUTF8")
            return
        if len(self.envelope.rcpt_tos) >= self.limits.max_recipients:
            await self.push("452 4.5.3 Error: too many recipients")
            return
        status = await self._call_handler_hook("RCPT", address, options)
        if status is MISSING:
            self.envelope.rcpt_tos.append(address)
            self.envelope.rcpt_options.extend(options)
            status = "250 2.1.5 OK"
        await self.push(status)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str | None):
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if self.envelope.mail_from is None:
            await self.push("503 5.5.1 Error: need MAIL command")
            return
        if not self.envelope.rcpt_tos:
            # RFC 5321 §3.3: no valid recipients.
            await self.push("554 5.5.1 Error: no valid recipients")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        ip = self.peer_ip or "unknown"
        if not self.data_limiter.acquire(ip):
            # Issue 12: each message in progress costs a spool and, at delivery, its size in
            # memory; one address gets a bounded share (RFC 5321 §4.3.2: 451 to DATA).
            await self.push("451 4.7.0 Error: too many messages in progress from your address, "
                            "try again later")
            return
        try:
            await self._receive_and_deliver()
        finally:
            self.data_limiter.release(ip)

    async def _receive_and_deliver(self) -> None:
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        spool = DataSpool(self.limits.spool_threshold)
        budget, held = delivery_budget(self.limits.delivery_budget), 0
        try:
            outcome = await self._read_data(spool)
            if outcome is not _Data.OK:
                self._set_post_data_state()
                await self.push(outcome.value)
                return
            if spool.on_disk:
                await budget.acquire(spool.size)
                held = spool.size
            content = await spool.read_all()
            spool.close()
            self.envelope.content = self.envelope.original_content = content
            del content
            try:
                status = await self._call_handler_hook("DATA")
            finally:
                self._set_post_data_state()
        finally:
            spool.close()
            if held:
                budget.release(held)
        await self.push("250 2.0.0 OK" if status is MISSING else status)

    async def _read_data(self, kept: DataSpool) -> _Data:
        """Read the message up to ``<CRLF>.<CRLF>`` and undo dot-stuffing (RFC 5321 §4.5.2).

        Lines are split on CRLF only, so a bare LF or CR never ends a line, let alone the data.
        Past the size limit or on an overlong line the data is still read to its end (the client
        waits for a reply only then, RFC 5321 §4.2.5) but no longer kept.

        For speed this works on whole lines in the stream reader's buffer instead of one
        ``readuntil`` per line: it takes every complete line buffered, and leaves a partial line
        (and anything after the end of data, such as a pipelined QUIT) in the buffer. So the
        buffer always starts at a line start, and the end of data is either ``.<CRLF>`` at its
        start or the first ``<CRLF>.<CRLF>`` in it. The reader holds at most about twice its
        line limit before it pauses the socket (asyncio flow control), so memory stays bounded."""
        reader = self._reader
        buffer: bytearray = reader._buffer  # aiosmtpd uses it too (RFC 3207 §4.2 discard)
        line_limit = self.line_length_limit
        size = 0
        outcome = _Data.OK
        inside_long_line = False
        loop = self.loop
        last_reset = loop.time()
        while True:
            if inside_long_line:
                # Drop the rest of an overlong line, keeping a trailing CR that may start its CRLF.
                end = buffer.find(b"\r\n")
                if end < 0:
                    drop = max(0, len(buffer) - 1)
                    size += drop
                    del buffer[:drop]
                else:
                    size += end + 2
                    del buffer[: end + 2]
                    inside_long_line = False
                    continue
            else:
                if buffer[:3] == b".\r\n":
                    del buffer[:3]
                    break
                end = buffer.find(b"\r\n.\r\n")
                if end >= 0:
                    chunk = bytes(buffer[: end + 2])
                    del buffer[: end + 5]
                    outcome = self._take_lines(chunk, kept, size, outcome)
                    size += len(chunk)
                    break
                end = buffer.rfind(b"\r\n")
                if end >= 0:
                    chunk = bytes(buffer[: end + 2])
                    del buffer[: end + 2]
                    outcome = self._take_lines(chunk, kept, size, outcome)
                    size += len(chunk)
                    if outcome is not _Data.OK:
                        kept.discard()
                    continue
                if len(buffer) > line_limit:
                    outcome = _Data.TOO_LONG if outcome is _Data.OK else outcome
                    kept.discard()
                    inside_long_line = True
                    continue
            reader._maybe_resume_transport()
            if reader.exception() is not None:
                raise reader.exception()
            if reader._eof:
                raise ConnectionResetError("connection closed during DATA")
            await reader._wait_for_data("read")
            # Data coming in is activity: keep the idle timer from firing mid-message.
            now = loop.time()
            if now - last_reset > self._reset_every:
                last_reset = now
                self._reset_timeout()
        reader._maybe_resume_transport()
        if outcome is not _Data.OK:
            kept.discard()
        return outcome

    def _take_lines(self, chunk: bytes, kept: DataSpool, size: int, outcome: _Data) -> _Data:
        """Check and keep whole CRLF-terminated lines (starting at a line start)."""
        if outcome is not _Data.OK:
            return outcome
        if self.data_size_limit and size + len(chunk) > self.data_size_limit:
            kept.discard()
            return _Data.TOO_BIG
        # Line lengths count the CRLF (RFC 5321 §4.5.3.1.6); a split leaves it out.
        if len(chunk) > self.line_length_limit and (
            max(map(len, chunk.split(b"\r\n"))) + 2 > self.line_length_limit
        ):
            kept.discard()
            return _Data.TOO_LONG
        if chunk[:1] == b".":
            chunk = chunk[1:]
        kept.write(chunk.replace(b"\r\n.", b"\r\n"))
        return _Data.OK
