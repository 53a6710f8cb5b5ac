"""Storing what the inbound policy concluded: delivery into Junk (DMARC ``p=quarantine``, RFC
7489 §6.3; the spam engine's "add header") and the verdict kept with the stored message
(``InboundVerdict``, and per recipient ``LookalikeVerdict``), in the delivery's transaction,
so the webmail can say why a message is in Junk and warn about a lookalike sender without
judging again."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from mailcore import blobstore
from mailcore.models import Folder, FolderRole, InboundVerdict, LookalikeVerdict
from mailcore.services.delivery import Delivered, append_message, deliver_to_inboxes
from mailcore.services.outbound.queue import enqueue_outbound, forwarding_sender
from mailcore.trust.lookalike import Lookalike


@dataclass(frozen=True)
class LookalikeRecord:
    """For the recipient ``mailbox_id``: the From imitates someone that user knows."""

    mailbox_id: int
    lookalike: Lookalike


@dataclass(frozen=True)
class VerdictRecord:
    dmarc: str
    junk: bool
    spam_scanned: bool
    spam_action: str = ""
    spam_score: float | None = None
    spam_required: float | None = None  # the engine's reject threshold (rspamd required_score)
    spam_symbols: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    lookalikes: tuple[LookalikeRecord, ...] = ()


def deliver_recorded(items: Sequence[tuple[bytes, Sequence[int], "VerdictRecord | None"]]
                     ) -> list[list[Delivered]]:
    """The MX's group commit: each ``(raw, mailbox_ids, record)`` stored in the recipients'
    INBOXes as ``deliver_to_inboxes`` does, and its verdict ``record`` (None: nothing to keep)
    kept in the same transaction, so a message is never stored without it."""
    with transaction.atomic():
        delivered = deliver_to_inboxes([(raw, mailbox_ids) for raw, mailbox_ids, _ in items])
        for (raw, _, record), stored in zip(items, delivered, strict=True):
            if record is not None and stored:
                record_verdict(raw, record)
    return delivered


def deliver_screened(raw: bytes, mailbox_ids: Sequence[int], junk_ids: Iterable[int],
                     record: VerdictRecord | None = None) -> list[Delivered]:
    """Store ``raw`` for each mailbox, in Junk for those in ``junk_ids`` (the INBOX of one
    that has no Junk) and in the INBOX for the others, with its verdict, all in one
    transaction. Raises ``QuotaExceeded`` as delivery does."""
    junk_ids = set(junk_ids)
    inbox_ids = [m for m in dict.fromkeys(mailbox_ids) if m not in junk_ids]
    delivered = []
    with transaction.atomic():
        if inbox_ids:
            delivered += deliver_to_inboxes([(raw, inbox_ids)])[0]
        chosen: dict[int, Folder] = {}
        for folder in Folder.objects.filter(
            mailbox_id__in=junk_ids, role__in=[FolderRole.JUNK, FolderRole.INBOX]
        ):
            if folder.role == FolderRole.JUNK or folder.mailbox_id not in chosen:
                chosen[folder.mailbox_id] = folder
        for mailbox_id in dict.fromkeys(mailbox_ids):
            folder = chosen.get(mailbox_id)
            if folder is None:
                continue
            message = append_message(folder, raw)
            delivered.append(Delivered(mailbox_id, folder.pk, message.uid, message.pk))
        if record is not None and delivered:
            record_verdict(raw, record)
    return delivered


def forward_screened(raw: bytes, mail_from: str, rcpt_tos: Sequence[str],
                     mailbox_ids: Sequence[int], junk_ids: Iterable[int], remote: Sequence[str],
                     record: VerdictRecord | None = None) -> None:
    """An alias that forwards outside and also delivers here, for a message the policy routes
    to Junk: the local copies go where ``deliver_screened`` puts them (Junk for ``junk_ids``)
    and the ``remote`` destinations are queued with the SRS sender, in one transaction, so a
    failure leaves neither."""
    with transaction.atomic():
        if mailbox_ids:
            deliver_screened(raw, mailbox_ids, junk_ids, record)
        enqueue_outbound(raw, forwarding_sender(mail_from, rcpt_tos), remote)


def record_verdict(raw: bytes, record: VerdictRecord) -> None:
    """Keep ``record`` with the stored message ``raw`` (already stored: a blob that is not
    there, or a verdict already kept, is left alone)."""
    try:
        with transaction.atomic():
            InboundVerdict.objects.create(
                blob_id=blobstore.blob_id(raw),
                dmarc=record.dmarc,
                junk=record.junk,
                spam_scanned=record.spam_scanned,
                spam_action=record.spam_action,
                spam_score=record.spam_score,
                spam_required=record.spam_required,
                spam_symbols=list(record.spam_symbols),
                reasons=list(record.reasons),
            )
    except IntegrityError:
        pass
    if not record.lookalikes:
        return
    blob_id = blobstore.blob_id(raw)
    try:
        with transaction.atomic():
            LookalikeVerdict.objects.bulk_create([
                LookalikeVerdict(mailbox_id=item.mailbox_id, blob_id=blob_id,
                                 kind=item.lookalike.kind,
                                 from_name=item.lookalike.from_name[:200],
                                 from_addr=item.lookalike.from_addr[:320],
                                 imitated=item.lookalike.imitated[:320])
                for item in record.lookalikes], ignore_conflicts=True)
    except IntegrityError:
        pass


def lookalike_warning(mailbox_id: int, blob_id: str) -> str | None:
    """The warning the MX stored for this recipient when the message was delivered, if any."""
    found = LookalikeVerdict.objects.filter(mailbox_id=mailbox_id, blob_id=blob_id).first()
    if found is None:
        return None
    return Lookalike(found.kind, found.from_name, found.from_addr, found.imitated).warning


@dataclass(frozen=True)
class TrustNotice:
    """What the reader shows about a received message: a plain warning when its sender could
    not be authenticated (DMARC fail), and in Junk the reasons it was put there."""

    warning: str | None = None
    junk_reasons: tuple[str, ...] = ()
    authentication: str = ""  # our Authentication-Results, unfolded


def trust_notice(raw: bytes, blob_id: str, in_junk: bool, hostname: str) -> TrustNotice:
    """Read our own Authentication-Results field (forged ones were removed at the MX, RFC 8601
    §5) and, in Junk, the verdict kept with the message."""
    from mailcore.mime.headers import split_header_block

    ours = ""
    headers, _ = split_header_block(raw)
    for name, value in headers:
        if name.lower() != "authentication-results":
            continue
        text = " ".join(value.decode("utf-8", "replace").split())
        if text.split(";", 1)[0].strip().lower() == hostname.lower():
            ours = text
            break
    warning = None
    results = {part.strip().split("=", 1)[0]: part.strip() for part in ours.split(";")[1:]}
    dmarc = results.get("dmarc", "")
    if dmarc.startswith("dmarc=fail"):
        domain = dmarc.rpartition("header.from=")[2].split()[0] if "header.from=" in dmarc else ""
        warning = (f"This message claims to come from {domain or 'a domain'} but that domain "
                   "did not vouch for it (DMARC failed). Be careful with links, attachments "
                   "and requests for money or passwords.")
    reasons: tuple[str, ...] = ()
    if in_junk:
        verdict = InboundVerdict.objects.filter(blob_id=blob_id).first()
        if verdict is not None:
            reasons = tuple(verdict.reasons)
            if verdict.spam_symbols:
                reasons += ("spam filter rules: " + ", ".join(verdict.spam_symbols[:6]),)
        if not reasons:
            reasons = ("You or your mail program moved it here.",)
    return TrustNotice(warning, reasons, ours)
