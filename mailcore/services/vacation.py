"""Vacation replies (RFC 5230, with :seconds from RFC 6131): decide whether a message gets
one, remember who was answered, build the reply and queue it through the outbound queue, from
the null sender, with ``Auto-Submitted: auto-replied`` (RFC 3834 §5) so no responder answers
it back.

No reply goes to the null sender, to list mail (List-Id and other RFC 2369 List-* fields,
Precedence bulk/list/junk), to automatic mail (Auto-Submitted other than "no"), to mailer
daemons and list owners (RFC 5230 §4.6), to the user's own addresses, or when the user is not
named in the recipient header fields (RFC 5230 §4.5); and to one sender at most once per period
and handle (§4.2)."""

import hashlib
from datetime import timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from django.conf import settings
from django.utils import timezone

from mailcore.models import FilterEventKind, Mailbox, VacationReply
from mailcore.services.accounts import normalize_address, owned_addresses
from mailcore.services.filters import record_event
from mailcore.services.outbound.queue import enqueue_outbound
from mailcore.sieve.actions import Vacation
from mailcore.sieve.message import SieveMessage

_LIST_HEADERS = ("list-id", "list-help", "list-subscribe", "list-unsubscribe", "list-post",
                 "list-owner", "list-archive")
_RECIPIENT_HEADERS = ("to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc")
MAX_SUBJECT = 200
MAX_REASON = 64 * 1024


def _handle(action: Vacation) -> str:
    """RFC 5230 §4.2: without :handle, replies differing in reason, subject, from or mime are
    different vacations (each with its own once-per-period memory)."""
    source = action.handle or "\0".join(
        [action.reason, action.subject or "", action.from_ or "", str(action.mime)])
    return hashlib.sha256(source.encode("utf-8", "replace")).hexdigest()[:64]


def why_not(message: SieveMessage, sender: str, own: set[str]) -> str:
    """The reason no reply is due, or "" when one is."""
    if not sender:
        return "null sender"
    local = sender.partition("@")[0].lower()
    if local in ("mailer-daemon", "postmaster") or local.startswith("owner-") \
            or local.endswith("-request"):
        return "sender is a mailer daemon or list address"
    if sender in own:
        return "sender is the user"
    auto = message.raw_values("auto-submitted")
    if auto and any(v.split(";")[0].strip().lower() != "no" for v in auto):
        return "message is automatic (Auto-Submitted)"
    if any(message.count(h) for h in _LIST_HEADERS):
        return "message is from a list"
    if any(v.strip().lower() in ("bulk", "list", "junk")
           for v in message.raw_values("precedence")):
        return "message is bulk mail (Precedence)"
    named = {normalize_address(a) for h in _RECIPIENT_HEADERS for a in message.addresses(h)}
    if not named & own:
        return "user is not a recipient in the header"
    return ""


def respond(mailbox: Mailbox, raw: bytes, mail_from: str, recipient: str,
            action: Vacation) -> int | None:
    """Queue the vacation reply when one is due; the outbound id, or None (no reply due)."""
    message = SieveMessage(raw)
    sender = normalize_address(mail_from) if mail_from else ""
    own = {normalize_address(a) for a in owned_addresses(mailbox)}
    own |= {normalize_address(a) for a in action.addresses}
    own.add(normalize_address(recipient))
    if why_not(message, sender, own):
        return None
    handle = _handle(action)
    now = timezone.now()
    record = VacationReply.objects.filter(mailbox=mailbox, sender=sender[:320],
                                          handle=handle).first()
    if record is not None and record.sent_at > now - timedelta(seconds=action.period):
        return None
    reply = build_reply(mailbox, message, sender, action, own)
    result = enqueue_outbound(reply, "", [sender], mailbox=mailbox, enforce_quota=False)
    if record is None:
        VacationReply.objects.create(mailbox=mailbox, sender=sender[:320], handle=handle,
                                     sent_at=now)
    else:
        VacationReply.objects.filter(pk=record.pk).update(sent_at=now)
    message_ids = message.raw_values("message-id")
    record_event(mailbox.pk, FilterEventKind.VACATION, f"replied to {sender}",
                 message_id=message_ids[0] if message_ids else "",
                 outbound_id=result.outbound_id)
    return result.outbound_id


def _clean(text: str, limit: int) -> str:
    return " ".join(text.split())[:limit]


def build_reply(mailbox: Mailbox, message: SieveMessage, sender: str, action: Vacation,
                own: set[str]) -> bytes:
    """The reply (RFC 5230 §5): From the user (or :from when it is one of theirs), To the
    sender, "Auto:" subject by default, In-Reply-To and References threading it."""
    reply = EmailMessage(policy=SMTP)
    from_ = mailbox.address
    if action.from_:
        candidates = SieveMessage(f"From: {_clean(action.from_, 500)}\r\n\r\n".encode())
        addresses = candidates.addresses("from")
        if addresses and normalize_address(addresses[0]) in own:
            from_ = _clean(action.from_, 500)  # RFC 5230 §5.2: only the user's own addresses
    reply["From"] = from_
    reply["To"] = sender
    subject = action.subject
    if subject is None:
        original = message.header_values("subject")
        subject = f"Auto: {original[0]}" if original else "Automated reply"
    reply["Subject"] = _clean(subject, MAX_SUBJECT)
    reply["Date"] = format_datetime(timezone.now())
    reply["Message-ID"] = make_msgid(domain=settings.CORREIO_HOSTNAME)
    original_id = next(iter(message.raw_values("message-id")), "").strip()
    if original_id.startswith("<") and original_id.endswith(">") and len(original_id) < 998:
        reply["In-Reply-To"] = original_id
        references = next(iter(message.raw_values("references")), "").split()[-20:]
        reply["References"] = " ".join([*references, original_id])
    reply["Auto-Submitted"] = "auto-replied"
    reason = action.reason[:MAX_REASON]
    if action.mime:
        # RFC 5230 §4.8: the reason is a MIME entity: its header fields, a blank line, body.
        part = SieveMessage(reason.replace("\r\n", "\n").replace("\n", "\r\n").encode())
        for name, field in part.fields:
            if name.lower().startswith("content-") or name.lower() == "mime-version":
                reply[name] = field.split(b":", 1)[1].decode("utf-8", "replace").strip()
        reply.set_payload(part.body.decode("utf-8", "replace"))
        return reply.as_bytes()
    reply.set_content(reason)
    return reply.as_bytes()
