"""Batched delivery for mail intake: :func:`deliver_many` stores a group commit's messages in
few statements.

It keeps :func:`mailcore.services.delivery.deliver_batch`'s contract (one transaction, all or
nothing, a list of ``Delivered`` per message) but does per batch what that does per message:
one multi-row blob insert, one quota check for all mailboxes, and per INBOX one UID allocation
(consecutive UIDs sharing one mod-sequence, as a multi-message COPY does, RFC 7162 §3.1), one
multi-row message insert, one usage update and one change event. SMTP intake spends its time in
the ORM's per-statement cost, so this is what lets it keep up with Postfix."""

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from mailcore.events import ChangeEvent, publish_on_commit
from mailcore.exceptions import QuotaExceeded
from mailcore.mime.parse import parse_message
from mailcore.models import Blob, Mailbox, Message
from mailcore.services.common import bump_folder
from mailcore.services.delivery import Delivered, _inbox_ids, _message_fields, _thread_id
from mailcore.services.quota import add_usage


def deliver_many(
    items: Sequence[tuple[bytes, Sequence[int]]],
    *,
    internal_date: datetime | None = None,
    enforce_quota: bool = True,
) -> list[list[Delivered]]:
    """Deliver several messages, each to the INBOX of its mailboxes, in ONE transaction.

    Returns, per message, where it was delivered. Raises ``QuotaExceeded`` (nothing stored) when
    ``enforce_quota`` and the batch would take a mailbox over its quota; the caller then retries
    the messages one by one so that only the one that does not fit is refused."""
    when = internal_date or timezone.now()
    prepared = []
    blobs: dict[str, Blob] = {}
    for raw, mailbox_ids in items:
        sha = hashlib.sha256(raw).hexdigest()
        blobs.setdefault(sha, Blob(sha256=sha, size=len(raw), data=raw))
        prepared.append((raw, sha, parse_message(raw), list(dict.fromkeys(mailbox_ids))))
    # Bytes and messages per mailbox, in arrival order.
    per_mailbox: dict[int, list[int]] = defaultdict(list)
    for index, (*_, mailbox_ids) in enumerate(prepared):
        for mailbox_id in mailbox_ids:
            per_mailbox[mailbox_id].append(index)
    results: list[list[Delivered]] = [[] for _ in prepared]
    with transaction.atomic():
        inboxes = _inbox_ids(per_mailbox)
        sizes = {
            mailbox_id: sum(len(prepared[i][0]) for i in indexes)
            for mailbox_id, indexes in per_mailbox.items()
        }
        if enforce_quota:
            _check_quotas(sizes)
        Blob.objects.bulk_create(list(blobs.values()), ignore_conflicts=True)
        rows: list[tuple[int, int, Message]] = []
        for mailbox_id, indexes in per_mailbox.items():
            folder_id = inboxes[mailbox_id]
            first_uid, modseq = bump_folder(folder_id, new=len(indexes), unseen=len(indexes))
            for offset, index in enumerate(indexes):
                raw, sha, parsed, _ = prepared[index]
                message = Message(
                    mailbox_id=mailbox_id,
                    folder_id=folder_id,
                    uid=first_uid + offset,
                    modseq=modseq,
                    keywords=[],
                    internal_date=when,
                    size=len(raw),
                    blob_id=sha,
                    thread_id=_thread_id(mailbox_id, parsed),
                    **_message_fields(parsed),
                )
                rows.append((index, mailbox_id, message))
            add_usage(mailbox_id, sizes[mailbox_id])
            publish_on_commit(ChangeEvent(mailbox_id, folder_id, modseq, "new"))
        Message.objects.bulk_create([message for *_, message in rows])
        for index, mailbox_id, message in rows:
            results[index].append(
                Delivered(mailbox_id, message.folder_id, message.uid, message.pk)
            )
    return results


def _check_quotas(sizes: dict[int, int]) -> None:
    for pk, quota, used in Mailbox.objects.filter(pk__in=list(sizes)).values_list(
        "pk", "quota", "used_bytes"
    ):
        if quota and used + sizes[pk] > quota:
            raise QuotaExceeded(f"{used + sizes[pk]} bytes would exceed the quota of {quota}")
