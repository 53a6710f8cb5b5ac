"""The submission listeners: port 587 with STARTTLS (RFC 6409) and port 465 with implicit TLS
(RFC 8314), where users hand their mail to Correio for delivery anywhere.

The same ``CorreioSMTP`` state machine as the MX, with AUTH (RFC 4954; PLAIN, RFC 4616, and
LOGIN) offered and accepted only over TLS or from a loopback address (ARCHITECTURE.md,
"Passwords travel encrypted"): elsewhere AUTH gets 538 5.7.11. MAIL, RCPT and DATA before AUTH
get 530 5.7.0; a bad password 535 5.7.8 through the shared failed-login throttle (454 4.7.0 once
throttled). The envelope sender and the From header must be the user's own addresses (553
5.7.1). Accepted mail goes to the outbound queue; local recipients are delivered at once. The
password check runs in the service thread pool, never on the event loop.

Messages that finish DATA at about the same time on several sessions are queued in ONE
transaction (``commit.submission_committer``, the MX's group commit with another service call):
one durable commit and one delivery task for all of them, and each client gets its 250 only
after that commit. The listeners are bound by :mod:`mailcore.protocols.smtp.server`."""

import binascii
import logging
from base64 import b64decode
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from aiosmtpd.smtp import MISSING, Envelope, Session, syntax

from mailcore import metrics
from mailcore.models import Mailbox
from mailcore.protocols.common import auth, revocation
from mailcore.protocols.common.limits import is_loopback
from mailcore.protocols.common.services import call_service
from mailcore.protocols.smtp.commit import BatchCommitter
from mailcore.protocols.smtp.handler import accept_data
from mailcore.protocols.smtp.policy import ListenerPolicy
from mailcore.protocols.smtp.protocol import CorreioSMTP
from mailcore.protocols.smtp.replies import reply_for
from mailcore.services import submission
from mailcore.trust.hook import screen_submission

logger = logging.getLogger("correio.smtp")

SUBMISSION_POLICY = ListenerPolicy(
    name="submission", starttls=True, offer_auth=True, require_auth=True, relay=True
)
SUBMISSIONS_POLICY = ListenerPolicy(
    name="submissions", starttls=False, implicit_tls=True, offer_auth=True, require_auth=True,
    relay=True,
)
MECHANISMS = ("LOGIN", "PLAIN")


class SubmissionSMTP(CorreioSMTP):
    """``CorreioSMTP`` with AUTH done here, asynchronously, through the service layer."""

    def __init__(self, handler, *, allow_plaintext: Callable[[str | None], bool] = is_loopback,
                 **kwargs):
        # Our smtp_AUTH and auth_advertised check TLS themselves (aiosmtpd's check cannot see
        # implicit TLS, nor the loopback exception).
        super().__init__(handler, **kwargs)
        self.allow_plaintext = allow_plaintext
        self._unwatch = None
        # Issue 12: before AUTH succeeds a deadline from the connection's start (as IMAP's and
        # POP3's), so NOOP, EHLO or RSET every few seconds cannot hold a slot for the session.
        self.preauth_timeout = kwargs["config"].preauth_timeout
        self._login_timer = None
        # aiosmtpd takes every method named auth_* for a mechanism (auth_advertised too).
        self._auth_methods = {
            name: impl for name, impl in self._auth_methods.items() if name in MECHANISMS
        }

    def connection_made(self, transport) -> None:
        first = self._original_transport is None and self.peer_ip is None
        super().connection_made(transport)
        if first and not self._rejected:
            self._login_timer = self.loop.call_later(self.preauth_timeout, self._login_expired)

    def connection_lost(self, error) -> None:
        if self._login_timer is not None:
            self._login_timer.cancel()
            self._login_timer = None
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        super().connection_lost(error)

    def _login_expired(self) -> None:
        self._login_timer = None
        if self.session is None or not self.session.authenticated:
            self._drop("421 4.7.0 {} Error: authentication timeout")

    def credentials_allowed(self) -> bool:
        return self.is_tls or self.allow_plaintext(self.peer_ip)

    def auth_advertised(self) -> bool:
        return self.policy.offer_auth and self.credentials_allowed()

    @syntax("AUTH <mechanism> [initial-response]")
    async def smtp_AUTH(self, arg: str | None):
        if await self.check_helo_needed("EHLO"):
            return
        if not self.session.extended_smtp:
            await self.push("503 5.5.1 Error: send EHLO first")
            return
        if not self.credentials_allowed():
            # RFC 4954 §6 / RFC 3207 §4: no plaintext password outside TLS.
            await self.push("538 5.7.11 Error: encryption required, issue STARTTLS first")
            return
        if self.session.authenticated:
            await self.push("503 5.5.1 Error: already authenticated")
            return
        if self.envelope.mail_from is not None:
            # RFC 4954 §4: AUTH is not permitted during a mail transaction.
            await self.push("503 5.5.1 Error: AUTH not allowed during a mail transaction")
            return
        args = (arg or "").split()
        if not args or len(args) > 2:
            await self.push("501 5.5.4 Syntax: AUTH mechanism [initial-response]")
            return
        mechanism = args[0].upper()
        if mechanism not in MECHANISMS:
            await self.push("504 5.5.4 Error: unrecognized authentication type")
            return
        credentials = await self._read_credentials(mechanism, args[1:])
        if credentials is None:
            return
        login, password = credentials
        try:
            with metrics.login_attempt("submission"):
                verified = await auth.authenticate(login, password, self.peer_ip)
            mailbox = verified.mailbox
            owned = await call_service(submission.owned_addresses, mailbox)
        except Exception as error:
            logger.info("%s: AUTH %s failed for %r", self.peer_ip, mechanism, login)
            await self.push(reply_for(error))
            return
        self.session.authenticated = True
        self.session.auth_data = SubmissionUser(mailbox, owned)
        self._unwatch = await revocation.watch_session(verified, self.end_revoked)
        if self._login_timer is not None:
            self._login_timer.cancel()
            self._login_timer = None
        await self.push("235 2.7.0 Authentication successful")

    def end_revoked(self) -> None:
        """The account's credentials were revoked: RFC 5321 §3.8 lets a server close with 421
        at any time. Mail not yet answered 250 is the client's to send again."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"421 4.7.0 Credentials changed or revoked; closing\r\n")
            self.transport.close()

    async def _read_credentials(self, mechanism: str, initial: list[str]):
        """(login, password) as text, or None after replying with the error."""
        if mechanism == "PLAIN":
            # RFC 4616 §2: [authzid] NUL authcid NUL passwd; an empty initial response is "=".
            if initial and initial[0] != "=":
                data = self._b64(initial[0])
                if data is None:
                    await self.push("501 5.5.2 Error: cannot decode base64")
                    return None
            else:
                data = await self.challenge_auth(b"") if not initial else b""
                if data is MISSING:
                    return None
            parts = data.split(b"\0")
            if len(parts) != 3:
                await self.push("501 5.5.2 Error: malformed PLAIN credentials")
                return None
            authzid, login, password = parts
            if authzid and authzid != login:
                # RFC 4616 §2: acting as another identity needs authorisation nobody has here
                # (IMAP and POP3 refuse it too).
                await self.push("535 5.7.8 Error: cannot act as another user")
                return None
        else:
            if initial:
                login = self._b64(initial[0])
                if login is None:
                    await self.push("501 5.5.2 Error: cannot decode base64")
                    return None
            else:
                login = await self.challenge_auth("Username:")
                if login is MISSING:
                    return None
            password = await self.challenge_auth("Password:")
            if password is MISSING:
                return None
        # Not UTF-8: kept undecodable, and refused as a wrong password by the credential check.
        return login.decode("utf-8", "surrogateescape"), password.decode("utf-8", "surrogateescape")

    @staticmethod
    def _b64(text: str) -> bytes | None:
        try:
            return b64decode(text.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            return None


@dataclass(frozen=True)
class SubmissionUser:
    """Who logged in, and the addresses they may send as (looked up once per session)."""

    mailbox: Mailbox
    owned: frozenset[str]


class SubmissionHandler:
    """Hooks of the submission listeners: the user's own sender, recipients anywhere, and the
    outbound queue (through the group commit) instead of the MX's local-only delivery. The end
    of DATA is the MX's shape (``handler.accept_data``) without Return-Path, which belongs to
    final delivery (RFC 5321 §4.4)."""

    def __init__(self, committer: BatchCommitter):
        # commit.submission_committer(): items submission.Submission, results EnqueueResult.
        self.committer = committer

    async def handle_MAIL(self, server, session: Session, envelope: Envelope, address, options):
        user: SubmissionUser = session.auth_data
        try:
            # No database work: the addresses were looked up at AUTH.
            sender = submission.check_sender(user.mailbox, address, user.owned)
        except Exception as error:
            return reply_for(error)
        envelope.mail_from = sender
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    @metrics.smtp_hook("submission", "RCPT")
    async def handle_RCPT(self, server, session: Session, envelope: Envelope, address, options):
        try:
            await call_service(submission.check_submission_recipient, address)
        except Exception as error:
            return reply_for(error)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    @metrics.smtp_hook("submission", "DATA")
    async def handle_DATA(self, server, session: Session, envelope: Envelope) -> str:
        store = partial(self.store, session, envelope)
        user: SubmissionUser = session.auth_data
        # The spam scan of inbound trust (issue 14), with the user named to rspamd.
        screen = partial(screen_submission, user=user.mailbox.address)
        return await accept_data(server, session, envelope, store, return_path=False,
                                 screen=screen)

    async def store(self, session: Session, envelope: Envelope, message: bytes) -> None:
        user: SubmissionUser = session.auth_data
        await self.committer.submit(submission.Submission(
            user.mailbox, envelope.mail_from, tuple(envelope.rcpt_tos), message, user.owned))
