"""Commands of the not-authenticated state (RFC 3501 §6.2): STARTTLS, LOGIN, AUTHENTICATE PLAIN
(RFC 4616, with SASL-IR, RFC 4959). Plaintext credentials only over TLS or from loopback
(ARCHITECTURE.md), LOGINDISABLED otherwise (§6.2.3)."""

from __future__ import annotations

import base64
import binascii

from mailcore import exceptions as exc
from mailcore import metrics
from mailcore.protocols.common import auth, revocation
from mailcore.protocols.imap import parser as p
from mailcore.protocols.imap.commands import MAX_FAILED_LOGINS, Reply, Session


class NotAuthenticatedState(Session):
    STATES = p.NOT_AUTHENTICATED

    async def cmd_STARTTLS(self, cmd: p.Bare) -> str:
        if self.tls_active:
            raise Reply("BAD", "TLS is already active")
        if self.tls_context is None:
            raise Reply("NO", "[UNAVAILABLE] TLS is not configured")
        await self.start_tls(cmd.tag)
        return ""

    async def cmd_LOGIN(self, cmd: p.Login) -> str:
        if not self.plaintext_allowed():
            raise Reply("NO", "[PRIVACYREQUIRED] Plaintext login needs TLS; use STARTTLS")
        await self.login(cmd.user, cmd.password)
        return f"[CAPABILITY {self.capabilities()}] Logged in"

    async def cmd_AUTHENTICATE(self, cmd: p.Authenticate) -> str:
        if cmd.mechanism != "PLAIN":
            raise Reply("NO", "[CANNOT] Unsupported authentication mechanism")
        if not self.plaintext_allowed():
            raise Reply("NO", "[PRIVACYREQUIRED] PLAIN needs TLS; use STARTTLS")
        response = cmd.initial
        if response is None:
            self.send("+ \r\n")
            await self.flush()
            line = (await self.read_line()).strip()
            if line == b"*":
                raise Reply("BAD", "Authentication cancelled")
            response = line.decode("ascii", "replace")
        if response == "=":
            response = ""
        try:
            decoded = base64.b64decode(response, validate=True)
            authzid, authcid, password = decoded.split(b"\0")
        except (binascii.Error, ValueError):
            raise Reply("BAD", "Invalid SASL PLAIN response") from None
        # Not UTF-8: refused as a wrong password by the credential check, never an error.
        user = authcid.decode("utf-8", "surrogateescape")
        secret = password.decode("utf-8", "surrogateescape")
        if authzid and authzid != authcid:
            raise Reply("NO", "[AUTHORIZATIONFAILED] Cannot act as another user")
        await self.login(user, secret)
        return f"[CAPABILITY {self.capabilities()}] Logged in"

    async def login(self, user: str, password: str) -> None:
        try:
            with metrics.login_attempt("imap"):
                login = await auth.authenticate(user, password, self.peer_ip)
        except exc.AuthFailed:
            self.failed_logins += 1
            if self.failed_logins >= MAX_FAILED_LOGINS:
                self.send("* BYE Too many failed logins\r\n")
                self.state = p.State.LOGOUT
            raise
        self.mailbox = mailbox = login.mailbox
        self.state = p.State.AUTHENTICATED
        self.subscribe_events(mailbox.pk)
        self._unwatch = await revocation.watch_session(login, self.end_revoked)
