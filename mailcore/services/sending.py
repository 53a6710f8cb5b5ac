"""Sending mail written in the webmail: through the outbound queue (the same checks and queue as
the submission port, RFC 6409), with a copy in Sent, the draft removed, ``\\Answered`` on the
message replied to, all in one transaction; taking it back while the queue still holds it
("undo send", cancelling "send later"); and the per-recipient delivery status of sent mail.

Every message is queued with a hold time (the undo window, or the chosen "send later" time), so
local recipients also go through the queue and get a delivery record like remote ones. A
delivery task is published for the end of the hold when it is near; the periodic sweep
(``outbound.admin.sweep_outbound``, Celery beat) sends held mail that is due in any case, so mail
goes at its time with the browser closed and without a broker task surviving for days."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from mailcore.blobstore import load_blob
from mailcore.mime.compose import Draft, build_message
from mailcore.models import FolderRole, Mailbox, Message, OutboundMessage
from mailcore.models.outbound import RecipientState
from mailcore.services import submission
from mailcore.services.delivery import append_message
from mailcore.services.dispatch import dispatch_at
from mailcore.services.drafts import discard_draft
from mailcore.services.flags import set_flags
from mailcore.services.folders import expunge, get_folder_by_role
from mailcore.services.outbound.queue import cancel_held, enqueue_outbound

MAX_DSN_CANDIDATES = 50


@dataclass
class SendResult:
    outbound_id: int | None
    sent: Message
    hold_until: datetime


def send_draft(
    mailbox: Mailbox,
    draft: Draft,
    *,
    hold_until: datetime,
    draft_uid: int | None = None,
    answered: Message | None = None,
) -> SendResult:
    """Queue ``draft`` for its recipients (held until ``hold_until``), store the copy in Sent
    (with Bcc, RFC 5322 §3.6.3), remove the saved draft and flag ``answered``.

    Raises ``ComposeError`` for a field that cannot be a header, ``SenderNotOwned`` when From
    is not the user's, ``UnknownRecipient`` for a local address that does not exist,
    ``InvalidAddress``, ``MessageTooLarge`` and ``QuotaExceeded`` (for the Sent copy); then
    nothing is queued or stored."""
    now = timezone.now()
    draft.date = draft.date or now
    sender = submission.check_sender(mailbox, draft.from_addr)
    recipients = [submission.check_submission_recipient(a) for a in draft.envelope_recipients]
    raw = build_message(draft, hostname=settings.CORREIO_HOSTNAME)
    copy = build_message(draft, hostname=settings.CORREIO_HOSTNAME, include_bcc=True)
    submission.check_from_header(mailbox, raw)
    sent_folder = get_folder_by_role(mailbox, FolderRole.SENT)
    with transaction.atomic():
        queued = enqueue_outbound(
            raw, sender, recipients, mailbox=mailbox, hold_until=hold_until
        )
        sent = append_message(sent_folder, copy, flags=["\\Seen"], internal_date=now,
                              max_size=settings.CORREIO_MAX_MESSAGE_SIZE)
        discard_draft(mailbox, draft_uid)
        if answered is not None:
            set_flags(answered.folder, [answered.uid], ["\\Answered"], "add")
        if queued.outbound_id is not None and settings.CORREIO_OUTBOUND_DISPATCH:
            entry = queued.outbound_id
            transaction.on_commit(lambda: dispatch_at(entry, hold_until))
    return SendResult(queued.outbound_id, sent, hold_until)


def take_back(mailbox: Mailbox, outbound_id: int, *, message_id: str,
              unanswer: Message | None = None) -> bool:
    """Undo a send (or cancel a scheduled one) while the queue still holds it: the queue entry
    and the Sent copy go, and ``\\Answered`` is taken off ``unanswer``. False (and nothing
    changes) when the message has left or is leaving."""
    with transaction.atomic():
        if not cancel_held(outbound_id, mailbox):
            return False
        sent_folder = get_folder_by_role(mailbox, FolderRole.SENT)
        uids = list(
            Message.objects.filter(folder=sent_folder, message_id=message_id)
            .values_list("uid", flat=True)
        )
        if uids:
            expunge(sent_folder, uids, only_deleted=False)
        if unanswer is not None:
            set_flags(unanswer.folder, [unanswer.uid], ["\\Answered"], "remove")
    return True


def scheduled(mailbox: Mailbox) -> list[OutboundMessage]:
    """The user's messages the queue still holds (the Outbox), soonest first."""
    return list(
        OutboundMessage.objects.filter(mailbox=mailbox, finished=False,
                                       hold_until__gt=timezone.now())
        .prefetch_related("recipients")
        .order_by("hold_until", "pk")
    )


# --- Delivery status ----------------------------------------------------------------------------


@dataclass
class RecipientStatus:
    address: str
    state: str  # queued, scheduled, delivered, deferred, bounced, expired
    host: str = ""
    at: datetime | None = None
    reply: str = ""
    next_try: datetime | None = None
    dsn_id: int | None = None


@dataclass
class DeliveryStatus:
    outbound_id: int
    hold_until: datetime | None
    recipients: list[RecipientStatus] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """One word for the whole message: the least advanced recipient's state."""
        order = ["bounced", "expired", "deferred", "scheduled", "queued", "delivered"]
        states = {r.state for r in self.recipients}
        return next((s for s in order if s in states), "queued")

    @property
    def pending(self) -> bool:
        return any(r.state in ("queued", "scheduled", "deferred") for r in self.recipients)


def delivery_status(mailbox: Mailbox, message_ids: list[str]) -> dict[str, DeliveryStatus]:
    """The delivery status of the user's sent messages with these Message-IDs, per recipient;
    messages that never went through the queue are absent. Two queries (three with bounces)."""
    ids = [m for m in message_ids if m]
    if not ids:
        return {}
    now = timezone.now()
    entries = (
        OutboundMessage.objects.filter(mailbox=mailbox, message_id__in=ids)
        .prefetch_related("recipients")
        .order_by("pk")
    )
    result: dict[str, DeliveryStatus] = {}
    bounced: list[tuple[OutboundMessage, RecipientStatus]] = []
    for entry in entries:
        status = DeliveryStatus(entry.pk, entry.hold_until)
        held = entry.hold_until is not None and entry.hold_until > now
        for r in entry.recipients.all():
            state = str(r.state)
            if state == RecipientState.QUEUED and held:
                state = "scheduled"
            item = RecipientStatus(r.address, state, host=r.last_host, at=r.last_attempt,
                                   reply=r.last_reply)
            if state == RecipientState.DEFERRED:
                item.next_try = r.next_attempt
            elif state == "scheduled":
                item.next_try = entry.hold_until
            elif state in (RecipientState.BOUNCED, RecipientState.EXPIRED):
                bounced.append((entry, item))
            status.recipients.append(item)
        result[entry.message_id] = status
    if bounced:
        _link_dsns(mailbox, bounced)
    return result


def _link_dsns(mailbox: Mailbox, bounced: list) -> None:
    """Find the DSN (RFC 3464) that told the user about each bounce: a report from the mailer
    daemon, received after the message was queued, quoting its Message-ID in the returned
    headers."""
    since = min(entry.created for entry, _ in bounced)
    candidates = list(
        Message.objects.filter(mailbox=mailbox, from_addr__istartswith="mailer-daemon@",
                               internal_date__gte=since - timedelta(minutes=1))
        .order_by("-pk")
        .only("id", "blob_id")[:MAX_DSN_CANDIDATES]
    )
    blobs: dict[int, bytes] = {}
    for entry, item in bounced:
        needle = entry.message_id.encode("utf-8", "replace")
        for candidate in candidates:
            if candidate.pk not in blobs:
                blobs[candidate.pk] = load_blob(candidate.blob_id)
            raw = blobs[candidate.pk]
            if needle in raw and item.address.encode("utf-8", "replace") in raw:
                item.dsn_id = candidate.pk
                break
