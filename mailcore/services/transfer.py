"""Bringing mail in from another store and taking it out (``importmail``, ``exportmail``).

Import appends a batch of messages to one folder in one transaction, the way
:func:`mailcore.services.intake.deliver_many` delivers a group commit: the per-message work of
:func:`mailcore.services.delivery.append_message` (stored bytes, search document, POP3 size,
cached fields, thread) with one UID allocation (consecutive UIDs sharing one mod-sequence, as a
multi-message COPY does, RFC 7162 §3.1), one multi-row insert, one usage update with the quota
enforced, and one change event per batch. A durable commit and a dozen statements per message
would make them, not the work, the limit. When a batch is refused, its messages go again one by
one through ``append_message`` itself, so only the refused ones are left out. Export reads a
folder in UID order a page at a time."""

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from mailcore import blobstore
from mailcore.events import ChangeEvent, publish_on_commit
from mailcore.exceptions import MailError, MessageTooLarge
from mailcore.mime.parse import parse_message
from mailcore.models import Blob, Folder, Mailbox, Message
from mailcore.models.message import FLAG_FIELDS
from mailcore.services import pop3, search
from mailcore.services.common import FlagSet, bump_folder
from mailcore.services.delivery import _message_fields, _thread_id, append_message
from mailcore.services.quota import add_usage

EXPORT_PAGE = 200


@dataclass(frozen=True)
class AppendItem:
    raw: bytes
    flags: tuple[str, ...] = ()
    internal_date: datetime | None = None


@dataclass(frozen=True)
class AppendOutcome:
    appended: int
    refused: list[tuple[int, MailError]]  # (index in the batch, why)


def append_batch(folder: Folder, items: Sequence[AppendItem], *,
                 max_size: int | None = None) -> AppendOutcome:
    """Append ``items`` to ``folder`` in one transaction, in order, each as IMAP APPEND would.

    When one is refused (``QuotaExceeded``, ``MessageTooLarge``) the batch is rolled back and
    appended again one message per transaction, so that only the refused ones are left out;
    they are returned with their error. Other errors propagate with nothing stored."""
    try:
        append_many(folder, items, max_size=max_size)
        return AppendOutcome(len(items), [])
    except MailError:
        if len(items) == 1:
            raise
    appended, refused = 0, []
    for index, item in enumerate(items):
        try:
            append_message(folder, item.raw, flags=item.flags,
                           internal_date=item.internal_date, max_size=max_size)
            appended += 1
        except MailError as error:
            refused.append((index, error))
    return AppendOutcome(appended, refused)


def append_many(folder: Folder, items: Sequence[AppendItem], *,
                max_size: int | None = None) -> list[int]:
    """Append ``items`` to ``folder`` in ONE transaction; return their UIDs, in order.

    Raises ``MessageTooLarge`` or ``QuotaExceeded`` (nothing stored)."""
    if not items:
        return []
    now = timezone.now()
    prepared = []
    for item in items:
        if max_size is not None and len(item.raw) > max_size:
            raise MessageTooLarge()
        prepared.append((item, hashlib.sha256(item.raw).hexdigest(), parse_message(item.raw),
                         FlagSet.parse(item.flags)))
    blobs = {sha: (item.raw, parsed) for item, sha, parsed, _ in prepared}
    unseen = sum(1 for *_, flags in prepared if not flags.system.get("seen"))
    with transaction.atomic():
        for sha, (raw, _) in blobs.items():
            blobstore.store_blob(raw, sha)
        pop3.record_sizes([(sha, raw) for sha, (raw, _) in blobs.items()])
        search.index_blobs([(sha, raw, parsed) for sha, (raw, parsed) in blobs.items()])
        first_uid, modseq = bump_folder(folder.pk, new=len(prepared), unseen=unseen)
        rows = [
            Message(
                mailbox_id=folder.mailbox_id,
                folder_id=folder.pk,
                uid=first_uid + offset,
                modseq=modseq,
                keywords=flags.keywords,
                internal_date=item.internal_date or now,
                size=len(item.raw),
                blob_id=sha,
                thread_id=_thread_id(folder.mailbox_id, parsed),
                **flags.system,
                **_message_fields(parsed),
            )
            for offset, (item, sha, parsed, flags) in enumerate(prepared)
        ]
        Message.objects.bulk_create(rows)
        add_usage(folder.mailbox_id, sum(len(item.raw) for item, *_ in prepared), enforce=True)
        publish_on_commit(ChangeEvent(folder.mailbox_id, folder.pk, modseq, "new"))
    return [row.uid for row in rows]


@dataclass(frozen=True)
class StoredMessage:
    uid: int
    flags: list[str]
    internal_date: datetime
    raw: bytes


def _flags(row: dict) -> list[str]:
    names = [f"\\{field.capitalize()}" for field in FLAG_FIELDS.values() if row[field]]
    return names + list(row["keywords"] or [])


def iter_folder(folder: Folder, page: int = EXPORT_PAGE) -> Iterator[StoredMessage]:
    """Every message of ``folder`` in UID order with its bytes, ``page`` rows at a time."""
    last = 0
    fields = ["uid", "internal_date", "keywords", "blob_id", *FLAG_FIELDS.values()]
    while True:
        rows = list(Message.objects.filter(folder=folder, uid__gt=last).order_by("uid")
                    .values(*fields)[:page])
        if not rows:
            return
        blobs = dict(Blob.objects.filter(pk__in={row["blob_id"] for row in rows})
                     .values_list("sha256", "data"))
        for row in rows:
            yield StoredMessage(row["uid"], _flags(row), row["internal_date"],
                                bytes(blobs[row["blob_id"]]))
        last = rows[-1]["uid"]


def folders_of(mailbox: Mailbox) -> list[Folder]:
    return list(Folder.objects.filter(mailbox=mailbox).order_by("name"))
