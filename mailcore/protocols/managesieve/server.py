"""The ManageSieve listener (RFC 5804): one asyncio session per connection, a thin state
machine over the Sieve script service (``mailcore.services.filters``).

Sign-in is AUTHENTICATE PLAIN (RFC 4616) through the same credential check and failed-login
throttle as IMAP (``protocols.common.auth.authenticate``), offered only over TLS (STARTTLS, §2.2)
or from loopback (ARCHITECTURE.md). Bounded work: line and literal sizes are capped (tighter
before sign-in), an idle client is dropped (sooner before sign-in), and so are clients that keep
sending bad commands or wrong passwords. ``start_servers`` binds ``config.managesieve_addr``;
options come from ``config.extra["managesieve"]`` (a :class:`ManageSieveOptions`)."""

import asyncio
import base64
import binascii
import logging
import ssl
from dataclasses import dataclass

from mailcore.exceptions import AuthFailed, AuthThrottled
from mailcore.protocols.common import auth, revocation
from mailcore.protocols.common.config import ListenerConfig
from mailcore.protocols.common.limits import ConnectionLimiter, Refusal, is_loopback
from mailcore.protocols.common.services import call_service
from mailcore.protocols.managesieve.parser import (
    Command,
    ParseError,
    Partial,
    finish,
    quote,
    response,
    tokenize_line,
)
from mailcore.services import filters
from mailcore.sieve.compile import EXTENSIONS
from mailcore.sieve.interpreter import MAX_REDIRECTS

logger = logging.getLogger("correio.managesieve")

MAX_STREAM_BUFFER = 64 * 1024


@dataclass(frozen=True)
class ManageSieveOptions:
    idle_timeout: float = 1800.0  # signed in
    preauth_timeout: float = 60.0  # before AUTHENTICATE succeeds
    max_line: int = 8 * 1024
    preauth_max_line: int = 1024
    # The service refuses scripts over its own size limit (QUOTA/MAXSIZE); a literal beyond this
    # is not even read: the connection ends.
    max_literal: int = 256 * 1024
    preauth_max_literal: int = 1024
    max_bad_commands: int = 10
    max_auth_failures: int = 3


def options_of(config: ListenerConfig) -> ManageSieveOptions:
    return config.extra.get("managesieve") or ManageSieveOptions()


# The one table from service errors to ManageSieve replies: (response code, text or None for
# the error's own message). RFC 5804 §1.3 response codes.
ERROR_REPLIES: dict[type[Exception], tuple[str | None, str | None]] = {
    AuthThrottled: ("TRYLATER", "too many failed logins; try again later"),
    AuthFailed: (None, "authentication failed"),
    filters.ScriptNotFound: ("NONEXISTENT", None),
    filters.ScriptExists: ("ALREADYEXISTS", None),
    filters.ScriptActive: ("ACTIVE", None),
    filters.ScriptInvalid: (None, None),
    filters.BadScriptName: (None, None),
}


class SieveNo(Exception):
    def __init__(self, text: str, code: str | None = None, bad_command: bool = False):
        super().__init__(text)
        self.text = text
        self.code = code
        self.bad_command = bad_command


class Closing(Exception):
    """End the session after sending ``BYE`` with this text."""


class Session:
    def __init__(self, reader, writer, config: ListenerConfig):
        self.reader: asyncio.StreamReader = reader
        self.writer: asyncio.StreamWriter = writer
        self.config = config
        self.options = options_of(config)
        self.tls = False
        peer = writer.get_extra_info("peername")
        self.peer_ip: str | None = peer[0] if peer else None
        self.mailbox = None
        self._unwatch = None
        self.bad_commands = 0
        self.auth_failures = 0
        # Before AUTHENTICATE a deadline from the connection's start, not an idle timer (issue
        # 12): NOOP or CAPABILITY every few seconds must not hold a slot for ever.
        self.login_deadline = asyncio.get_running_loop().time() + self.options.preauth_timeout

    # --- I/O -----------------------------------------------------------------------------

    @property
    def timeout(self) -> float:
        if self.mailbox:
            return self.options.idle_timeout
        return max(0.0, self.login_deadline - asyncio.get_running_loop().time())

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), timeout=self.timeout)

    async def read_line(self) -> bytes:
        limit = self.options.max_line if self.mailbox else self.options.preauth_max_line
        try:
            line = await asyncio.wait_for(self.reader.readuntil(b"\n"), timeout=self.timeout)
        except TimeoutError:
            raise Closing("idle for too long") from None
        except asyncio.LimitOverrunError:
            raise Closing("line too long") from None
        if len(line) > limit:
            raise Closing("line too long")
        return line[:-2] if line.endswith(b"\r\n") else line[:-1]

    async def read_literal(self, size: int) -> bytes:
        limit = self.options.max_literal if self.mailbox else self.options.preauth_max_literal
        if size > limit:
            raise Closing("literal too large")
        try:
            return await asyncio.wait_for(self.reader.readexactly(size), timeout=self.timeout)
        except TimeoutError:
            raise Closing("idle for too long") from None

    async def read_command(self) -> Command:
        """A whole command: a line, and for each literal marker its octets and the rest."""
        partial = Partial()
        for _ in range(8):
            tokenize_line(await self.read_line(), partial)
            if partial.literal is None:
                return finish(partial)
            partial.tokens.append(await self.read_literal(partial.literal))
        raise ParseError("too many literals")

    # --- the session ---------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self.send(self.capabilities())
            while True:
                try:
                    command = await self.read_command()
                    await self.dispatch(command)
                except ParseError as error:
                    await self.refuse(SieveNo(str(error), bad_command=True))
                except SieveNo as no:
                    await self.refuse(no)
        except Closing as closing:
            if str(closing):
                try:
                    await self.send(response("BYE", text=str(closing)))
                except (ConnectionError, TimeoutError, ssl.SSLError):
                    pass
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, TimeoutError):
            pass
        finally:
            await self.close()

    async def close(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), timeout=5)
        except TimeoutError:
            self.writer.transport.abort()
        except (ConnectionError, ssl.SSLError):
            pass

    async def refuse(self, no: SieveNo) -> None:
        await self.send(response("NO", no.code, no.text))
        if no.bad_command:
            self.bad_commands += 1
            if self.bad_commands >= self.options.max_bad_commands:
                raise Closing("too many bad commands")

    async def dispatch(self, command: Command) -> None:
        name = command.name
        anytime = ("CAPABILITY", "LOGOUT", "NOOP")
        before = ("STARTTLS", "AUTHENTICATE")
        after = ("PUTSCRIPT", "CHECKSCRIPT", "LISTSCRIPTS", "SETACTIVE", "GETSCRIPT",
                 "DELETESCRIPT", "RENAMESCRIPT", "HAVESPACE")
        if name in anytime or (name in before and not self.mailbox) or (
            name in after and self.mailbox
        ):
            await getattr(self, f"cmd_{name}")(command)
        elif name in before or name in after:
            raise SieveNo(f"{name} is not allowed now", bad_command=True)
        else:
            raise SieveNo(f"unknown command {name}", bad_command=True)

    async def service(self, func, *args):
        """Call the service layer; its errors become NO replies through the one table."""
        try:
            return await call_service(func, *args)
        except filters.ScriptQuota as error:
            raise SieveNo(str(error), error.code) from None
        except Exception as error:
            for klass in type(error).__mro__:
                if klass in ERROR_REPLIES:
                    code, text = ERROR_REPLIES[klass]
                    raise SieveNo(text or str(error), code) from None
            logger.error("ManageSieve service call failed", exc_info=error)
            raise SieveNo("temporary server error; try again later", "TRYLATER") from None

    # --- arguments -----------------------------------------------------------------------

    @staticmethod
    def args(command: Command, *kinds: str) -> list:
        """Check the argument kinds ("string", "number"); strings are decoded from UTF-8."""
        if len(command.args) != len(kinds):
            raise SieveNo(f"{command.name}: wrong number of arguments", bad_command=True)
        values = []
        for value, kind in zip(command.args, kinds, strict=True):
            if kind == "number":
                if not isinstance(value, int):
                    raise SieveNo(f"{command.name}: expected a number", bad_command=True)
                values.append(value)
                continue
            if not isinstance(value, bytes):
                raise SieveNo(f"{command.name}: expected a string", bad_command=True)
            try:
                values.append(value.decode("utf-8"))
            except UnicodeDecodeError:
                raise SieveNo("strings must be UTF-8", bad_command=True) from None
        return values

    # --- not authenticated (RFC 5804 §2.1, §2.2) -----------------------------------------

    def plaintext_allowed(self) -> bool:
        return self.tls or is_loopback(self.peer_ip)

    def capabilities(self) -> bytes:
        lines = [
            b'"IMPLEMENTATION" "Correio"',
            b'"SASL" ' + quote("PLAIN" if self.plaintext_allowed() and not self.mailbox else ""),
            b'"SIEVE" ' + quote(" ".join(EXTENSIONS)),
            b'"MAXREDIRECTS" ' + quote(str(MAX_REDIRECTS)),
            b'"VERSION" "1.0"',
        ]
        if self.config.server_tls_context is not None and not self.tls and not self.mailbox:
            lines.append(b'"STARTTLS"')
        if self.mailbox:
            lines.append(b'"OWNER" ' + quote(self.mailbox.address))
        return b"\r\n".join(lines) + b"\r\n" + response("OK", text="ManageSieve ready")

    async def cmd_CAPABILITY(self, command: Command) -> None:
        self.args(command)
        await self.send(self.capabilities())

    async def cmd_NOOP(self, command: Command) -> None:
        if command.args:
            (tag,) = self.args(command, "string")
            await self.send(b"OK (TAG " + quote(tag) + b') "Done"\r\n')
        else:
            await self.send(response("OK", text="Done"))

    async def cmd_LOGOUT(self, command: Command) -> None:
        await self.send(response("OK", text="Logout"))
        raise Closing("")

    async def cmd_STARTTLS(self, command: Command) -> None:
        self.args(command)
        context = self.config.server_tls_context
        if context is None or self.tls:
            raise SieveNo("TLS is not available now", bad_command=True)
        if self.reader._buffer:  # RFC 5804 §2.2: nothing may be pipelined after STARTTLS
            raise Closing("data after STARTTLS")
        # No await between the reply and start_tls: the client's handshake must not be read
        # as plain input meanwhile (start_tls pauses reading first).
        self.writer.write(response("OK", text="Begin TLS negotiation"))
        await self.writer.start_tls(context)
        self.tls = True
        await self.send(self.capabilities())  # RFC 5804 §2.2: capabilities again, under TLS

    async def cmd_AUTHENTICATE(self, command: Command) -> None:
        if not command.args or not isinstance(command.args[0], bytes):
            raise SieveNo("AUTHENTICATE needs a mechanism", bad_command=True)
        if command.args[0].upper() != b"PLAIN":
            raise SieveNo("only PLAIN is supported", bad_command=True)
        if not self.plaintext_allowed():
            raise SieveNo("use STARTTLS first", "ENCRYPT-NEEDED")
        if len(command.args) == 2:
            (_mech, initial) = self.args(command, "string", "string")
        else:
            self.args(command, "string")
            await self.send(b'""\r\n')  # RFC 5804 §2.1: an empty PLAIN challenge
            reply = Partial(name="-")
            tokenize_line(await self.read_line(), reply)
            if reply.literal is not None:
                reply.tokens.append(await self.read_literal(reply.literal))
                await self.read_line()
            if len(reply.tokens) != 1 or not isinstance(reply.tokens[0], bytes):
                raise SieveNo("bad SASL response", bad_command=True)
            initial = reply.tokens[0].decode("ascii", "replace")
            if initial == "*":
                raise SieveNo("authentication cancelled")
        try:
            decoded = base64.b64decode(initial.strip(), validate=True)
            authzid, authcid, password = (
                part.decode("utf-8", "surrogateescape") for part in decoded.split(b"\0")
            )
        except (binascii.Error, ValueError):
            raise SieveNo("invalid SASL PLAIN response", bad_command=True) from None
        # Not UTF-8 (surrogate escapes): refused as a wrong password by the credential check.
        try:
            if not authcid or (authzid and authzid != authcid):
                raise AuthFailed()
            login = await auth.authenticate(authcid, password, self.peer_ip)
        except AuthFailed as error:
            self.auth_failures += 1
            code, text = ERROR_REPLIES[type(error)]
            if self.auth_failures >= self.options.max_auth_failures:
                await self.send(response("NO", code, text))
                raise Closing("too many failed logins") from None
            raise SieveNo(text or "authentication failed", code) from None
        self.mailbox = login.mailbox
        self._unwatch = await revocation.watch_session(login, self.writer.close)
        await self.send(response("OK", text="Logged in"))

    # --- authenticated (RFC 5804 §2.3-§2.12) ---------------------------------------------

    async def cmd_HAVESPACE(self, command: Command) -> None:
        name, size = self.args(command, "string", "number")
        await self.service(filters.check_space, self.mailbox, name, size)
        await self.send(response("OK"))

    async def cmd_PUTSCRIPT(self, command: Command) -> None:
        name, text = self.args(command, "string", "string")
        await self.service(filters.put_script, self.mailbox, name, text)
        await self.send(response("OK"))

    async def cmd_CHECKSCRIPT(self, command: Command) -> None:
        (text,) = self.args(command, "string")
        await self.service(filters.check_script, text)
        await self.send(response("OK"))

    async def cmd_LISTSCRIPTS(self, command: Command) -> None:
        self.args(command)
        scripts = await self.service(filters.list_scripts, self.mailbox)
        lines = [quote(s.name) + (b" ACTIVE" if s.active else b"") + b"\r\n" for s in scripts]
        await self.send(b"".join(lines) + response("OK"))

    async def cmd_SETACTIVE(self, command: Command) -> None:
        (name,) = self.args(command, "string")
        await self.service(filters.set_active, self.mailbox, name)
        await self.send(response("OK"))

    async def cmd_GETSCRIPT(self, command: Command) -> None:
        (name,) = self.args(command, "string")
        text = await self.service(filters.get_script, self.mailbox, name)
        data = text.encode("utf-8")
        await self.send(b"{%d}\r\n" % len(data) + data + b"\r\n" + response("OK"))

    async def cmd_DELETESCRIPT(self, command: Command) -> None:
        (name,) = self.args(command, "string")
        await self.service(filters.delete_script, self.mailbox, name)
        await self.send(response("OK"))

    async def cmd_RENAMESCRIPT(self, command: Command) -> None:
        old, new = self.args(command, "string", "string")
        await self.service(filters.rename_script, self.mailbox, old, new)
        await self.send(response("OK"))


async def start_servers(config: ListenerConfig) -> list[asyncio.Server]:
    """Bind the ManageSieve listener when the config has an address for it."""
    addr = config.managesieve_addr
    if not addr:
        return []
    limiter = ConnectionLimiter(config.max_connections, config.max_connections_per_ip)

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        ip = peer[0] if peer else ""
        refusal = limiter.admit(ip)
        if refusal is not None:
            # RFC 5804 §1.3 TRYLATER: a temporary failure, worth a retry.
            text = "server busy, try again later" if refusal is Refusal.BUSY else refusal.value
            writer.write(response("BYE", "TRYLATER", text))
            writer.close()
            return
        try:
            await Session(reader, writer, config).run()
        finally:
            limiter.release(ip)

    host, port = addr
    return [await asyncio.start_server(on_connect, host, port, limit=MAX_STREAM_BUFFER)]
