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

from django.db import connection, transaction
from django.utils import timezone

from mailcore import blobstore
from mailcore.events import ChangeEvent, publish_on_commit
from mailcore.exceptions import QuotaExceeded
from mailcore.mime.parse import parse_message
from mailcore.models import Blob, Folder, FolderRole, Mailbox, Message
from mailcore.services import pop3, search
from mailcore.services.common import bump_folder
from mailcore.services.delivery import Delivered, _message_fields, _thread_id


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
        if mailbox_ids:  # bytes nothing refers to are not kept
            blobs.setdefault(sha, Blob(sha256=sha, size=len(raw), data=raw))
        prepared.append((raw, sha, parse_message(raw), list(dict.fromkeys(mailbox_ids))))
    # Bytes and messages per mailbox, in arrival order.
    per_mailbox: dict[int, list[int]] = defaultdict(list)
    for index, (*_, mailbox_ids) in enumerate(prepared):
        for mailbox_id in mailbox_ids:
            per_mailbox[mailbox_id].append(index)
    results: list[list[Delivered]] = [[] for _ in prepared]
    sizes = {
        mailbox_id: sum(len(prepared[i][0]) for i in indexes)
        for mailbox_id, indexes in per_mailbox.items()
    }
    with transaction.atomic():
        inboxes = _inboxes_checking_quota(sizes, enforce_quota)
        if blobs:
            for sha, blob in blobs.items():
                blobstore.store_blob(blob.data, sha)
            pop3.record_sizes([(sha, blob.data) for sha, blob in blobs.items()])
            parsed_by_sha = {sha: (raw, parsed) for raw, sha, parsed, _ in prepared}
            search.index_blobs([(sha, *parsed_by_sha[sha]) for sha in blobs])
        rows: list[tuple[int, int, Message]] = []
        for mailbox_id, indexes in per_mailbox.items():
            folder_id = inboxes[mailbox_id]
            first_uid, modseq = _bump_inbox(folder_id, len(indexes))
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
            _add_usage(mailbox_id, sizes[mailbox_id])
            publish_on_commit(ChangeEvent(mailbox_id, folder_id, modseq, "new"))
        if rows:
            Message.objects.bulk_create([message for *_, message in rows])
        for index, mailbox_id, message in rows:
            results[index].append(
                Delivered(mailbox_id, message.folder_id, message.uid, message.pk)
            )
    return results


# The statements below run once per batch on the intake hot path, where building an ORM query
# costs ten times executing it; they are plain SQL on the models' own tables, valid on SQLite
# (>= 3.35 for RETURNING) and PostgreSQL alike.
_FOLDER = Folder._meta.db_table
_MAILBOX = Mailbox._meta.db_table


def _inboxes_checking_quota(sizes: dict[int, int], enforce_quota: bool) -> dict[int, int]:
    """The INBOX folder id of each mailbox; raise ``QuotaExceeded`` when adding ``sizes`` would
    take one over its quota (0 = unlimited)."""
    ids = list(sizes)
    if not ids:
        return {}
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT f.mailbox_id, f.id, m.quota, m.used_bytes FROM {_FOLDER} f "
            f"JOIN {_MAILBOX} m ON m.id = f.mailbox_id "
            f"WHERE f.role = %s AND f.mailbox_id IN ({marks})",
            [FolderRole.INBOX, *ids],
        )
        rows = cursor.fetchall()
    inboxes = {}
    for mailbox_id, folder_id, quota, used in rows:
        if enforce_quota and quota and used + sizes[mailbox_id] > quota:
            raise QuotaExceeded(f"{used + sizes[mailbox_id]} bytes would exceed the quota of {quota}")
        inboxes[mailbox_id] = folder_id
    return inboxes


def _bump_inbox(folder_id: int, new: int) -> tuple[int, int]:
    """``bump_folder`` for ``new`` unseen messages in one statement: (first new UID, modseq)."""
    if not connection.features.can_return_columns_from_insert:  # SQLite < 3.35
        return bump_folder(folder_id, new=new, unseen=new)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_FOLDER} SET uidnext = uidnext + %s, highestmodseq = highestmodseq + 1, "
            "message_count = message_count + %s, unseen_count = unseen_count + %s "
            "WHERE id = %s RETURNING uidnext, highestmodseq",
            [new, new, new, folder_id],
        )
        uidnext, modseq = cursor.fetchone()
    return uidnext - new, modseq


def _add_usage(mailbox_id: int, delta: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_MAILBOX} SET used_bytes = used_bytes + %s WHERE id = %s", [delta, mailbox_id]
        )
