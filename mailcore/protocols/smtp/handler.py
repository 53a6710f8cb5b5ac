"""``MXHandler``: the aiosmtpd hooks of the MX listener, which receives mail for Correio's
domains from the Internet.

RCPT is checked through the service layer as it arrives (RFC 5321 §3.3): a mailbox or alias of
a local domain is accepted, anything else refused with the reply of ``replies.REPLIES``. At the
end of DATA the message gets its trace headers (RFC 5321 §4.4) and is committed to every
recipient's INBOX, one stored copy, through the group committer; 250 is sent only after the
commit (ARCHITECTURE.md, "No loss"). The submission listener extends this class."""

import secrets

from aiosmtpd.smtp import Envelope, Session

from mailcore import metrics
from mailcore.protocols.common.services import call_service
from mailcore.protocols.smtp.commit import GroupCommitter
from mailcore.protocols.smtp.replies import MailLoop, reply_for
from mailcore.protocols.smtp.trace import (
    count_received,
    received_header,
    return_path_header,
    tls_description,
    with_protocol,
)
from mailcore.services.outbound import forward_message
from mailcore.services.recipients import check_recipient


def new_queue_id() -> str:
    """The id a message is known by in our Received header, logs and 250 reply."""
    return secrets.token_hex(8).upper()


class MXHandler:
    def __init__(self, committer: GroupCommitter):
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
        raw = envelope.original_content
        queue_id = new_queue_id()
        try:
            if count_received(raw) > server.limits.max_received:
                raise MailLoop()
            message = self.trace_headers(server, session, envelope, queue_id) + raw
            await self.store(server, session, envelope, message)
        except Exception as error:
            return reply_for(error)
        return f"250 2.0.0 OK: queued as {queue_id}"

    async def store(self, server, session: Session, envelope: Envelope, message: bytes) -> None:
        """Commit the message to the local recipients' INBOXes; raise on any failure. With
        remote alias destinations, the local copies and the queue entry for the remote ones
        commit in one transaction (outside the group commit), so a failure leaves neither."""
        if envelope.remote:
            await call_service(forward_message, message, envelope.mail_from or "",
                               envelope.rcpt_tos)
            return
        await self.committer.deliver(message, envelope.mailbox_ids)

    def trace_headers(self, server, session: Session, envelope: Envelope, queue_id: str) -> bytes:
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
        return return_path_header(envelope.mail_from or "") + received
