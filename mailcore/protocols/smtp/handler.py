"""The aiosmtpd handler hooks: ``MXHandler`` for the MX listener, which receives mail for
Correio's domains from the Internet, and the parts every SMTP handler shares (the end of DATA:
loop check, trace headers, store, reply), which the submission handler composes too.

RCPT is checked through the service layer as it arrives (RFC 5321 §3.3): a mailbox or alias of
a local domain is accepted, anything else refused with the reply of ``replies.REPLIES``. At the
end of DATA the message gets its trace headers (RFC 5321 §4.4) and is committed to every
recipient's INBOX, one stored copy, through the group committer; 250 is sent only after the
commit (ARCHITECTURE.md, "No loss")."""

import secrets
from collections.abc import Awaitable, Callable
from functools import partial

from aiosmtpd.smtp import Envelope, Session

from mailcore import metrics
from mailcore.mime.trace import return_path_header
from mailcore.protocols.common.services import call_service
from mailcore.protocols.smtp.commit import BatchCommitter
from mailcore.protocols.smtp.replies import MailLoop, reply_for
from mailcore.protocols.smtp.trace import (
    count_received,
    received_header,
    tls_description,
    with_protocol,
)
from mailcore.services.filtering import deliver_filtered
from mailcore.services.outbound.queue import forward_message
from mailcore.services.quarantine import deliver_screened, forward_screened
from mailcore.services.recipients import check_recipient
from mailcore.trust.hook import Screened, record_screened, screen_inbound


def new_queue_id() -> str:
    """The id a message is known by in our Received header, logs and 250 reply."""
    return secrets.token_hex(8).upper()


def trace_headers(server, session: Session, envelope: Envelope, queue_id: str, *,
                  return_path: bool) -> bytes:
    """Our Received field (RFC 5321 §4.4), preceded by Return-Path when this server is the
    final delivery (the MX); a submission server relays, and final delivery adds it there."""
    tls = None
    if server.is_tls and server.transport is not None:
        tls = tls_description({"cipher": server.transport.get_extra_info("cipher")})
    protocol = with_protocol(
        esmtp=session.extended_smtp,
        tls=server.is_tls,
        auth=bool(session.authenticated),
        utf8=envelope.smtp_utf8,
    )
    received = received_header(
        helo=session.host_name,
        peer_ip=server.peer_ip or "unknown",
        hostname=server.hostname,
        protocol=protocol,
        queue_id=queue_id,
        recipients=envelope.rcpt_tos,
        tls=tls,
    )
    if return_path:
        return return_path_header(envelope.mail_from or "") + received
    return received


async def accept_data(
    server,
    session: Session,
    envelope: Envelope,
    store: Callable[[bytes], Awaitable[None]],
    *,
    return_path: bool,
    screen: Callable[..., Awaitable[Screened]] | None = None,
) -> str:
    """The end of DATA for every listener: refuse a looping message (RFC 5321 §6.3), ``screen``
    it (the MX's inbound trust: may refuse, and rewrites the header with its verdict), prepend
    the trace headers, ``store`` the message (which commits or raises), and answer 250 only
    then; any error becomes its reply from ``replies.REPLIES``."""
    raw = envelope.original_content
    queue_id = new_queue_id()
    try:
        if count_received(raw) > server.limits.max_received:
            raise MailLoop()
        if screen is not None:
            screened = await screen(server, session, envelope, raw)
            if screened.reply:
                return screened.reply
            envelope.screened = screened
            raw = screened.raw
        header = trace_headers(server, session, envelope, queue_id, return_path=return_path)
        await store(header + raw)
    except Exception as error:
        return reply_for(error)
    return f"250 2.0.0 OK: queued as {queue_id}"


class MXHandler:
    def __init__(self, committer: BatchCommitter):
        # commit.intake_committer(): items (raw, mailbox_ids, verdict record or None), shared
        # by the MX listeners.
        self.committer = committer

    @metrics.smtp_hook("mx", "RCPT")
    async def handle_RCPT(self, server, session: Session, envelope: Envelope, address, options):
        try:
            resolution = await call_service(check_recipient, address)
        except Exception as error:
            return reply_for(error)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        envelope.mailbox_ids.extend(
            mid for mid in resolution.mailbox_ids if mid not in envelope.mailbox_ids
        )
        # An alias forwarding outside: the outbound queue takes that part (see store).
        envelope.remote.extend(a for a in resolution.remote if a not in envelope.remote)
        return "250 2.1.5 OK"

    @metrics.smtp_hook("mx", "DATA")
    async def handle_DATA(self, server, session: Session, envelope: Envelope) -> str:
        # Inbound trust (issue 14): SPF/DKIM/DMARC/ARC and spam verdict, refusal or Junk.
        return await accept_data(server, session, envelope, partial(self.store, envelope),
                                 return_path=True, screen=screen_inbound)

    async def store(self, envelope: Envelope, message: bytes) -> None:
        """Commit the message to the local recipients' INBOXes; raise on any failure. With
        remote alias destinations, the local copies and the queue entry for the remote ones
        commit in one transaction (outside the group commit), so a failure leaves neither."""
        screened = getattr(envelope, "screened", None)  # inbound trust (issue 14)
        if screened is not None and screened.junk_ids:
            if envelope.remote:  # the local copies honour Junk; the forwarded ones leave
                await call_service(forward_screened, message, envelope.mail_from or "",
                                   envelope.rcpt_tos, envelope.mailbox_ids, screened.junk_ids,
                                   envelope.remote, screened.record)
            else:
                await call_service(deliver_screened, message, envelope.mailbox_ids,
                                   screened.junk_ids, screened.record)
            return
        # Sieve (RFC 5228), after the trust verdict: recipients with an active script are
        # filtered and stored here.
        record = screened.record if screened is not None else None
        spam = ((record.spam_score, record.spam_required)
                if record is not None and record.spam_score is not None else None)
        filtered = await call_service(deliver_filtered, message, envelope.mail_from or "",
                                      envelope.rcpt_tos, envelope.mailbox_ids, envelope.remote,
                                      spam=spam, from_mx=True)
        if filtered.handled:
            await record_screened(message, screened)
            return
        if envelope.remote:
            await call_service(forward_message, message, envelope.mail_from or "",
                               envelope.rcpt_tos)
            await record_screened(message, screened)  # for the local copies
            return
        # The verdict commits with the message (``quarantine.deliver_recorded``).
        await self.committer.submit((message, tuple(envelope.mailbox_ids), record))
