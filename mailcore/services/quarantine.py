"""Delivery into Junk: a message the inbound policy quarantines (DMARC ``p=quarantine``,
RFC 7489 §6.3) is stored for its recipients in their Junk folder instead of the INBOX, one
stored copy, all mailboxes in one transaction (nothing stored when anything fails)."""

from collections.abc import Sequence

from django.db import transaction

from mailcore.models import Folder, FolderRole
from mailcore.services.delivery import Delivered, append_message


def deliver_to_junk(raw: bytes, mailbox_ids: Sequence[int]) -> list[Delivered]:
    """Store ``raw`` in the Junk folder of each mailbox (the INBOX of one that has no Junk).
    Raises ``QuotaExceeded`` as delivery does."""
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
    return delivered
