"""Bringing mail in from another store and taking it out (``importmail``, ``exportmail``).

Import appends a batch of messages to one folder in one transaction through the one delivery
write path (:func:`mailcore.services.delivery.append_many`: one UID allocation, one multi-row
insert, one usage update with the quota enforced, one change event per batch); a durable commit
per message would make commits, not the work, the limit. When a batch is refused, its messages
go again one by one through ``append_message``, so only the refused ones are left out. Export
reads a folder in UID order a page at a time."""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from mailcore.exceptions import MailError
from mailcore.models import Blob, Folder, Mailbox, Message
from mailcore.models.message import FLAG_FIELDS
from mailcore.services.delivery import AppendRequest, append_many, append_message, prepare_append

EXPORT_PAGE = 200


@dataclass(frozen=True)
class AppendItem:
    """One message to import: its bytes, IMAP flags and internal date (None: now)."""

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
        request = AppendRequest(folder.mailbox_id, folder.pk, [
            prepare_append(item.raw, item.flags, item.internal_date, max_size=max_size)
            for item in items
        ])
        (result,) = append_many([request])
        if isinstance(result, Exception):
            raise result
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
