"""Delivery and append: raw bytes in, one stored copy, a Message row in each target folder.

The bytes received are the message: they are stored once, unchanged, and parsed once here into
the cached fields (envelope, body structure, preview, thread) that every door reads.

There is one write path, :func:`_store`, for the SMTP group commit, single deliveries (local
mail from the outbound queue, imports) and IMAP APPEND alike. It does per batch what the ORM
would do per message, because SMTP intake spends its time in per-statement cost: one quota
charge per mailbox, one insert per new blob, per folder one UID allocation (consecutive UIDs
sharing one mod-sequence, as a multi-message COPY does, RFC 7162 §3.1) and one change event,
and one multi-row message insert for everything."""

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from mailcore import blobstore
from mailcore.events import ChangeEvent, publish_on_commit
from mailcore.exceptions import FolderNotFound, MessageTooLarge
from mailcore.mime.parse import ParsedMessage, parse_message
from mailcore.models import Folder, FolderRole, Message
from mailcore.services import pop3
from mailcore.services.accounts import resolve_recipient
from mailcore.services.common import FlagSet, bump_folder
from mailcore.services.message_rows import message_fields, thread_id
from mailcore.services.quota import charge
from mailcore.services.search.index import index_blobs


@dataclass
class Delivered:
    mailbox_id: int
    folder_id: int
    uid: int
    message_pk: int


@dataclass
class DeliveryResult:
    sha256: str
    delivered: list[Delivered] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)


@dataclass
class _Incoming:
    """One message to store: its bytes, their id, what was parsed from them, its flags."""

    raw: bytes
    sha: str
    parsed: ParsedMessage
    flags: FlagSet

    @classmethod
    def of(cls, raw: bytes, flags: FlagSet | None = None) -> "_Incoming":
        flags = flags or FlagSet(system={}, keywords=[])
        return cls(raw, hashlib.sha256(raw).hexdigest(), parse_message(raw), flags)


def _store(
    messages: Sequence[_Incoming],
    targets: Sequence[Sequence[tuple[int, int]]],
    *,
    internal_date: datetime,
    enforce_quota: bool,
) -> list[list[Message]]:
    """Store each message in its target folders, given as ``(mailbox_id, folder_id)`` pairs;
    return the rows made, per message. Call inside a transaction.

    Raises ``QuotaExceeded`` (before anything is written) when ``enforce_quota`` and a mailbox
    would go over its quota. Bytes no folder refers to are not kept."""
    per_folder: dict[tuple[int, int], list[int]] = defaultdict(list)
    sizes: dict[int, int] = defaultdict(int)
    for index, (message, places) in enumerate(zip(messages, targets, strict=True)):
        for place in dict.fromkeys(places):
            per_folder[place].append(index)
            sizes[place[0]] += len(message.raw)
    for mailbox_id, size in sizes.items():
        charge(mailbox_id, size, enforce=enforce_quota)
    blobs = {m.sha: m for i, m in enumerate(messages) if targets[i]}
    for sha, message in blobs.items():
        blobstore.store_blob(message.raw, sha)
    if blobs:
        pop3.record_sizes([(sha, m.raw) for sha, m in blobs.items()])
        index_blobs([(sha, m.raw, m.parsed) for sha, m in blobs.items()])
    rows: list[tuple[int, Message]] = []
    for (mailbox_id, folder_id), indexes in per_folder.items():
        unseen = sum(1 for i in indexes if not messages[i].flags.system.get("seen"))
        first_uid, modseq = bump_folder(folder_id, new=len(indexes), unseen=unseen)
        for offset, index in enumerate(indexes):
            message = messages[index]
            rows.append((index, Message(
                mailbox_id=mailbox_id,
                folder_id=folder_id,
                uid=first_uid + offset,
                modseq=modseq,
                keywords=message.flags.keywords,
                internal_date=internal_date,
                size=len(message.raw),
                blob_id=message.sha,
                thread_id=thread_id(mailbox_id, message.parsed),
                **message.flags.system,
                **message_fields(message.parsed),
            )))
        publish_on_commit(ChangeEvent(mailbox_id, folder_id, modseq, "new"))
    Message.objects.bulk_create([row for _, row in rows])
    stored: list[list[Message]] = [[] for _ in messages]
    for index, row in rows:
        stored[index].append(row)
    return stored


# Once per SMTP group commit, where building an ORM query costs ten times running it.
_INBOXES_SQL = (
    f"SELECT mailbox_id, id FROM {Folder._meta.db_table} WHERE role = %s AND mailbox_id IN "
)


def _inboxes(mailbox_ids: Iterable[int]) -> dict[int, int]:
    """The INBOX folder id of each mailbox."""
    ids = list(dict.fromkeys(mailbox_ids))
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_INBOXES_SQL + f"({', '.join(['%s'] * len(ids))})",
                       [FolderRole.INBOX, *ids])
        return dict(cursor.fetchall())


def deliver_to_inboxes(
    items: Sequence[tuple[bytes, Sequence[int]]],
    *,
    internal_date: datetime | None = None,
    enforce_quota: bool = True,
) -> list[list[Delivered]]:
    """Deliver several messages, each to the INBOX of its mailboxes, in ONE transaction.

    This is the group commit behind SMTP intake: many messages share one durable commit. Either
    all are stored or, on any error, none is (the caller then retries them one by one, so that
    only the one that does not fit is refused). Returns, per message, where it was delivered.
    Raises ``QuotaExceeded`` when ``enforce_quota`` and a mailbox would go over quota."""
    messages = [_Incoming.of(raw) for raw, _ in items]
    with transaction.atomic():
        inboxes = _inboxes(mailbox_id for _, ids in items for mailbox_id in ids)
        missing = {m for _, ids in items for m in ids} - inboxes.keys()
        if missing:  # never acknowledge mail that has nowhere to go
            raise FolderNotFound(f"no INBOX for mailboxes {sorted(missing)}")
        targets = [[(m, inboxes[m]) for m in ids] for _, ids in items]
        stored = _store(messages, targets, internal_date=internal_date or timezone.now(),
                        enforce_quota=enforce_quota)
    return [[Delivered(row.mailbox_id, row.folder_id, row.uid, row.pk) for row in rows]
            for rows in stored]


def deliver_to_mailboxes(
    raw: bytes, mailbox_ids: Sequence[int], *, enforce_quota: bool = True
) -> list[Delivered]:
    """Deliver one message to the INBOX of each mailbox (one stored copy)."""
    return deliver_to_inboxes([(raw, mailbox_ids)], enforce_quota=enforce_quota)[0]


def store_in_folders(raw: bytes, places: Sequence[tuple[Folder, Iterable[str]]], *,
                     enforce_quota: bool = True) -> list[Delivered]:
    """Store one message in several folders, each copy with its own flags (what a Sieve
    script's keep and fileinto actions ask, RFC 5232 §3), in one batched write: parsed once,
    the bytes stored once, each folder bumped once. Returns where, in the order given.
    Raises ``QuotaExceeded`` before anything is written."""
    if not places:
        return []
    base = _Incoming.of(raw)
    messages = [replace(base, flags=FlagSet.parse(flags)) for _folder, flags in places]
    targets = [[(folder.mailbox_id, folder.pk)] for folder, _flags in places]
    with transaction.atomic():
        stored = _store(messages, targets, internal_date=timezone.now(),
                        enforce_quota=enforce_quota)
    return [Delivered(folder.mailbox_id, folder.pk, row.uid, row.pk)
            for (folder, _flags), (row,) in zip(places, stored, strict=True)]


def deliver_message(raw: bytes, recipients: Iterable[str], *, enforce_quota: bool = True):
    """Deliver a message to local recipient addresses, expanding aliases.

    Returns a ``DeliveryResult`` whose ``remote`` lists alias destinations outside Correio's
    domains (for the outbound queue). Raises what :func:`resolve_recipient` raises for a bad
    recipient and ``QuotaExceeded``; nothing is stored when anything is raised."""
    mailbox_ids, remote = resolve_recipients(recipients)
    (delivered,) = deliver_to_inboxes([(raw, mailbox_ids)], enforce_quota=enforce_quota)
    return DeliveryResult(sha256=blobstore.blob_id(raw), delivered=delivered, remote=remote)


def resolve_recipients(recipients: Iterable[str]) -> tuple[list[int], list[str]]:
    """(the local mailboxes, the alias destinations outside our domains) of local recipient
    addresses. Raises what :func:`resolve_recipient` raises for a bad recipient."""
    mailbox_ids: list[int] = []
    remote: list[str] = []
    for address in recipients:
        resolution = resolve_recipient(address)
        mailbox_ids.extend(resolution.mailbox_ids)
        remote.extend(resolution.remote)
    return mailbox_ids, list(dict.fromkeys(remote))


def append_message(
    folder: Folder,
    raw: bytes,
    *,
    flags: Iterable[str] = (),
    internal_date: datetime | None = None,
    max_size: int | None = None,
) -> Message:
    """Append a message to a folder with flags and an internal date (IMAP APPEND, RFC 3501
    §6.3.11; saving to Sent or Drafts). Raises ``QuotaExceeded`` or ``MessageTooLarge``."""
    if max_size is not None and len(raw) > max_size:
        raise MessageTooLarge()
    message = _Incoming.of(raw, FlagSet.parse(flags))
    with transaction.atomic():
        ((row,),) = _store([message], [[(folder.mailbox_id, folder.pk)]],
                           internal_date=internal_date or timezone.now(), enforce_quota=True)
    return row
