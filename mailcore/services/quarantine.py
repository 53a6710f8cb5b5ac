"""Storing what the inbound policy concluded: delivery into Junk (DMARC ``p=quarantine``, RFC
7489 §6.3; the spam engine's "add header") and the verdict kept with the stored message
(``InboundVerdict``), so the webmail can say why a message is in Junk."""

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from mailcore import blobstore
from mailcore.models import Folder, FolderRole, InboundVerdict
from mailcore.services.delivery import Delivered, append_message


@dataclass(frozen=True)
class VerdictRecord:
    dmarc: str
    junk: bool
    spam_scanned: bool
    spam_action: str = ""
    spam_score: float | None = None
    spam_symbols: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()


def deliver_to_junk(raw: bytes, mailbox_ids: Sequence[int],
                    record: VerdictRecord | None = None) -> list[Delivered]:
    """Store ``raw`` in the Junk folder of each mailbox (the INBOX of one that has no Junk),
    with its verdict, in one transaction. Raises ``QuotaExceeded`` as delivery does."""
    delivered = []
    with transaction.atomic():
        chosen: dict[int, Folder] = {}
        for folder in Folder.objects.filter(
            mailbox_id__in=mailbox_ids, role__in=[FolderRole.JUNK, FolderRole.INBOX]
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
                spam_symbols=list(record.spam_symbols),
                reasons=list(record.reasons),
            )
    except IntegrityError:
        pass
