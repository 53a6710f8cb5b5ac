"""Delivery and append: raw bytes in, one stored copy, a Message row in each target folder.

The bytes received are the message: they are stored once, unchanged, and parsed once here into
the cached fields (envelope, body structure, preview, thread) that every door reads.

There is one write path, :func:`_store`, for the SMTP group commit, single deliveries (local
mail from the outbound queue, imports) and IMAP APPEND alike. It does per batch what the ORM
would do per message, because SMTP intake spends its time in per-statement cost: one quota
charge per mailbox, one insert per new blob, per folder one UID allocation (consecutive UIDs
sharing one mod-sequence, as a multi-message COPY does, RFC 7162 §3.1) and one change event,
and one multi-row message insert for everything."""

import functools
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
from mailcore.services.common import FlagSet, bump_folder, lock_folders
from mailcore.services.message_rows import message_fields, thread_id
from mailcore.services.quota import charge
from mailcore.services.search.index import document_fields, insert_documents


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
    """One message to store: its bytes, their id, what was parsed from them, its flags and,
    for APPEND, its own internal date."""

    raw: bytes
    sha: str
    parsed: ParsedMessage
    flags: FlagSet
    date: datetime | None
    document: dict[str, str]  # its search document

    @classmethod
    def of(cls, raw: bytes, flags: FlagSet | None = None,
           date: datetime | None = None) -> "_Incoming":
        flags = flags or FlagSet(system={}, keywords=[])
        parsed = parse_message(raw)
        return cls(raw, hashlib.sha256(raw).hexdigest(), parsed, flags, date,
                   document_fields(raw, parsed))


def _store(
    messages: Sequence[_Incoming],
    targets: Sequence[Sequence[tuple[int, int]]],
    *,
    internal_date: datetime,
    enforce_quota: bool,
) -> list[list[Message]]:
    """Store each message in its target folders, given as ``(mailbox_id, folder_id)`` pairs;
    return the rows made, per message. Call inside a transaction.

    Raises ``QuotaExceeded`` when ``enforce_quota`` and a mailbox would go over its quota (the
    caller's transaction then stores nothing). Bytes no folder refers to are not kept.

    Locks are taken in the store's order (``services.common``): the folders by id (their UIDs),
    then the mailboxes by id (their quota), then the blobs."""
    per_folder: dict[tuple[int, int], list[int]] = defaultdict(list)
    sizes: dict[int, int] = defaultdict(int)
    for index, (message, places) in enumerate(zip(messages, targets, strict=True)):
        for place in dict.fromkeys(places):
            per_folder[place].append(index)
            sizes[place[0]] += len(message.raw)
    allocated: dict[tuple[int, int], tuple[int, int]] = {}
    for place in sorted(per_folder, key=lambda place: place[1]):
        indexes = per_folder[place]
        unseen = sum(1 for i in indexes if not messages[i].flags.system.get("seen"))
        allocated[place] = bump_folder(place[1], new=len(indexes), unseen=unseen)
    for mailbox_id in sorted(sizes):
        charge(mailbox_id, sizes[mailbox_id], enforce=enforce_quota)
    blobs = {m.sha: m for i, m in enumerate(messages) if targets[i]}
    if blobs:
        blobstore.store_blobs((sha, m.raw) for sha, m in blobs.items())
        pop3.record_sizes([(sha, m.raw) for sha, m in blobs.items()])
        insert_documents([(sha, m.document) for sha, m in blobs.items()])
    rows: list[tuple[int, Message]] = []
    for (mailbox_id, folder_id), indexes in per_folder.items():
        first_uid, modseq = allocated[(mailbox_id, folder_id)]
        for offset, index in enumerate(indexes):
            message = messages[index]
            rows.append((index, Message(
                mailbox_id=mailbox_id,
                folder_id=folder_id,
                uid=first_uid + offset,
                modseq=modseq,
                keywords=message.flags.keywords,
                internal_date=message.date or internal_date,
                size=len(message.raw),
                blob_id=message.sha,
                thread_id=thread_id(mailbox_id, message.parsed),
                **message.flags.system,
                **message_fields(message.parsed),
            )))
        publish_on_commit(ChangeEvent(mailbox_id, folder_id, modseq, "new"))
    _insert_rows([row for _, row in rows])
    stored: list[list[Message]] = [[] for _ in messages]
    for index, row in rows:
        stored[index].append(row)
    return stored


def _plain(value, connection):
    return value


@functools.cache
def _insert_plan() -> tuple[str, tuple, tuple]:
    """The INSERT of Message rows: its SQL head, the columns' attributes and a converter per
    column (the field's own for JSON and dates, none for plain values)."""
    from django.db import models

    fields = [f for f in Message._meta.concrete_fields if not f.primary_key]
    plain = (models.IntegerField, models.BooleanField, models.CharField, models.TextField,
             models.ForeignKey)
    head = (f"INSERT INTO {Message._meta.db_table} ("
            + ", ".join(connection.ops.quote_name(f.column) for f in fields) + ") VALUES ")
    converters = tuple(_plain if isinstance(f, plain) else f.get_db_prep_save for f in fields)
    return head, tuple(f.attname for f in fields), converters


_INSERT_BATCH = 400  # rows per statement: within SQLite's 32,766 parameters


def _insert_rows(rows: list[Message]) -> None:
    """Insert new Message rows and set their primary keys, as ``bulk_create`` would, but
    building the statement by hand: on a group commit the ORM's per-value preparation costs
    more than the insert itself."""
    head, attnames, converters = _insert_plan()
    placeholder = "(" + ", ".join(["%s"] * len(attnames)) + ")"
    pairs = tuple(zip(attnames, converters, strict=True))
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _INSERT_BATCH):
            batch = rows[start:start + _INSERT_BATCH]
            params = [convert(getattr(row, name), connection)
                      for row in batch for name, convert in pairs]
            cursor.execute(head + ", ".join([placeholder] * len(batch)) + " RETURNING id",
                           params)
            for row, (pk,) in zip(batch, cursor.fetchall(), strict=True):
                row.pk = pk
                row._state.adding = False
                row._state.db = connection.alias


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


@dataclass
class AppendRequest:
    """One APPEND or MULTIAPPEND command (RFC 3502): messages for one folder, all or none. Build
    the messages with :func:`prepare_append` (parsing happens there, outside the commit)."""

    mailbox_id: int
    folder_id: int
    messages: list[_Incoming]


def prepare_append(raw: bytes, flags: Iterable[str] = (), internal_date: datetime | None = None,
                   *, max_size: int | None = None) -> _Incoming:
    """Check and parse one message for :func:`append_many`. Raises ``MessageTooLarge``."""
    if max_size is not None and len(raw) > max_size:
        raise MessageTooLarge()
    return _Incoming.of(raw, FlagSet.parse(flags), internal_date)


def append_many(requests: Sequence[AppendRequest]) -> list[list[Message] | Exception]:
    """Store several APPEND commands in ONE transaction: the group commit of IMAP APPEND, as
    :func:`deliver_to_inboxes` is SMTP's (``BatchCommitter`` calls it with the commands that
    finished together). Each command's messages get consecutive UIDs in its folder.

    Returns, per request, its rows in order, or ``FolderNotFound`` for a folder deleted since
    (that request alone is refused). Raises ``QuotaExceeded`` for the batch as a whole (the
    committer then retries each request alone, so only the one that does not fit fails)."""
    if not requests:
        return []
    with transaction.atomic():
        existing = lock_folders(r.folder_id for r in requests)
        messages: list[_Incoming] = []
        targets: list[list[tuple[int, int]]] = []
        for request in requests:
            if request.folder_id in existing:
                for message in request.messages:
                    messages.append(message)
                    targets.append([(request.mailbox_id, request.folder_id)])
        stored = _store(messages, targets, internal_date=timezone.now(), enforce_quota=True)
    results: list[list[Message] | Exception] = []
    position = 0
    for request in requests:
        if request.folder_id not in existing:
            results.append(FolderNotFound(f"folder {request.folder_id} no longer exists"))
            continue
        count = len(request.messages)
        results.append([rows[0] for rows in stored[position:position + count]])
        position += count
    return results
