"""Folders and the messages in them: create, rename, delete and subscribe folders; copy, move
and expunge messages; changes since a mod-sequence.

Subscriptions are names (RFC 3501 §6.3.6): deleting a folder keeps its subscription, RENAME
carries the subscriptions of the folder and its subfolders to the new names.

Folder names are full paths with ``/`` as delimiter. ``INBOX`` is case-insensitive (RFC 3501
§5.1) and is stored as ``INBOX``. UIDs given out are never reused (RFC 3501 §2.3.1.1)."""

import unicodedata
from dataclasses import dataclass
from typing import NamedTuple

from django.db import IntegrityError, connection, transaction
from django.db.models import Case, IntegerField, Sum, Value, When

from mailcore import blobstore
from mailcore.events import ChangeEvent, publish_on_commit
from mailcore.exceptions import (
    FolderExists,
    FolderHasChildren,
    FolderNotFound,
    FolderProtected,
    InvalidFolderName,
    MailError,
    SpecialUseUnavailable,
)
from mailcore.models import ExpungedMessage, Folder, FolderRole, Mailbox, Message, Subscription
from mailcore.services.common import Uids, bump_folder, lock_folders, uid_q, uid_sql
from mailcore.services.message_rows import release_references
from mailcore.services.quota import charge
from mailcore.services.training import train_after_commit

MAX_FOLDER_NAME = 500
MAX_FOLDER_DEPTH = 20
# Subscriptions outlive their folders, so create-subscribe-delete could grow them without end;
# far above what any real client keeps.
MAX_SUBSCRIPTIONS = 10_000
# Characters that cannot stand in a folder name: the LIST wildcards (RFC 3501 §6.3.8).
FORBIDDEN_CHARS = set("*%")
_ROLE_ORDER = [role for role, _label in FolderRole.choices]
_COPY_FIELDS = (
    "seen answered flagged deleted draft keywords internal_date size blob_id subject from_name "
    "from_addr to_addrs cc_addrs date message_id in_reply_to references thread_id preview "
    "has_attachments envelope structure"
).split()


def canonical_name(name: str) -> str:
    """Validate a folder name and return its stored form. Raises ``InvalidFolderName``."""
    name = unicodedata.normalize("NFC", name.strip())
    if not name or len(name) > MAX_FOLDER_NAME:
        raise InvalidFolderName("folder names are 1 to 500 characters")
    if any(ch in FORBIDDEN_CHARS or unicodedata.category(ch) == "Cc" for ch in name):
        raise InvalidFolderName("folder names cannot contain *, % or control characters")
    parts = name.split(Folder.DELIMITER)
    if any(not part.strip() for part in parts) or len(parts) > MAX_FOLDER_DEPTH:
        raise InvalidFolderName("empty level in folder name or hierarchy too deep")
    if any(part in (".", "..") for part in parts):
        # Path-like levels: clients (and exports to Maildir) read them as the file system does.
        raise InvalidFolderName("folder names cannot have . or .. levels")
    if parts[0].upper() == "INBOX":
        parts[0] = "INBOX"
    return Folder.DELIMITER.join(parts)


def list_folders(mailbox: Mailbox):
    """The mailbox's folders: special folders first in a fixed order, then the rest by name."""
    order = Case(
        *[When(role=role, then=Value(i)) for i, role in enumerate(_ROLE_ORDER)],
        default=Value(len(_ROLE_ORDER)),
        output_field=IntegerField(),
    )
    return Folder.objects.filter(mailbox=mailbox).order_by(order, "name")


_FOLDER_FIELDS = [f.attname for f in Folder._meta.concrete_fields]


def get_folder(mailbox: Mailbox, name: str) -> Folder:
    """The mailbox's folder of that name (INBOX in any case). Raises ``FolderNotFound``.

    One hand-written query: IMAP SELECT, STATUS and APPEND run it on every call, where the
    ORM's query building cost more than the query."""
    try:
        canonical = canonical_name(name)
    except InvalidFolderName:
        raise FolderNotFound(name) from None
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(_FOLDER_FIELDS)} FROM {Folder._meta.db_table}"
            " WHERE mailbox_id = %s AND name = %s",
            [mailbox.pk, canonical],
        )
        row = cursor.fetchone()
    if row is None:
        raise FolderNotFound(name)
    return Folder.from_db(connection.alias, _FOLDER_FIELDS, row)


def get_folder_by_role(mailbox: Mailbox, role: str) -> Folder:
    try:
        return Folder.objects.get(mailbox=mailbox, role=role)
    except Folder.DoesNotExist:
        raise FolderNotFound(role) from None


def _create_parents(mailbox: Mailbox, name: str) -> None:
    parts = name.split(Folder.DELIMITER)
    for depth in range(1, len(parts)):
        Folder.objects.get_or_create(mailbox=mailbox, name=Folder.DELIMITER.join(parts[:depth]))


def create_folder(mailbox: Mailbox, name: str, subscribe: bool = True, role: str = "") -> Folder:
    """Create a folder and any missing parents (RFC 3501 §6.3.3), subscribed unless
    ``subscribe`` is false (IMAP CREATE does not subscribe), with a special-use ``role``
    (CREATE-SPECIAL-USE, RFC 6154 §3) when given. Raises ``InvalidFolderName``,
    ``FolderExists``, and ``SpecialUseUnavailable`` when another folder has the role (one
    folder per role and mailbox): then nothing is created (RFC 6154 §3 "MUST NOT create")."""
    name = canonical_name(name)
    if role and role not in FolderRole.values or role == FolderRole.INBOX:
        raise SpecialUseUnavailable(role)
    try:
        with transaction.atomic():
            if Folder.objects.filter(mailbox=mailbox, name=name).exists():
                raise FolderExists(name)
            if role and Folder.objects.filter(mailbox=mailbox, role=role).exists():
                raise SpecialUseUnavailable(role)
            _create_parents(mailbox, name)
            folder = Folder.objects.create(mailbox=mailbox, name=name, role=role)
            if subscribe:
                Subscription.objects.get_or_create(mailbox=mailbox, name=name)
            publish_on_commit(ChangeEvent(mailbox.pk, folder.pk, folder.highestmodseq, "folders"))
    except IntegrityError:
        # Two sessions creating the same name or use at once: the unique constraints decide.
        if role and Folder.objects.filter(mailbox=mailbox, role=role).exists():
            raise SpecialUseUnavailable(role) from None
        raise FolderExists(name) from None
    return folder


def rename_folder(mailbox: Mailbox, old: str, new: str) -> Folder:
    """Rename a folder with its subfolders. Renaming INBOX moves its messages to a new folder
    and leaves INBOX empty (RFC 3501 §6.3.5). Special folders other than INBOX keep their names.
    Raises ``FolderNotFound``, ``FolderExists``, ``FolderProtected``, ``InvalidFolderName``."""
    new_name = canonical_name(new)
    with transaction.atomic():
        folder = get_folder(mailbox, old)
        if Folder.objects.filter(mailbox=mailbox, name=new_name).exists():
            raise FolderExists(new_name)
        if folder.role == FolderRole.INBOX:
            if new_name.startswith("INBOX/"):
                raise InvalidFolderName("cannot rename INBOX into itself")
            _create_parents(mailbox, new_name)
            target = Folder.objects.create(mailbox=mailbox, name=new_name)
            Subscription.objects.get_or_create(mailbox=mailbox, name=new_name)
            move_messages(folder, None, target)
            return target
        if folder.role:
            raise FolderProtected(folder.name)
        prefix = folder.name + Folder.DELIMITER
        if new_name == folder.name or new_name.startswith(prefix):
            raise InvalidFolderName("cannot rename a folder into itself")
        _create_parents(mailbox, new_name)
        children = list(Folder.objects.filter(mailbox=mailbox, name__startswith=prefix))
        lock_folders([folder.pk, *(child.pk for child in children)])
        old_names = [child.name for child in children]
        for child in children:
            child.name = new_name + Folder.DELIMITER + child.name[len(prefix) :]
        renamed = {folder.name: new_name}
        renamed.update(zip(old_names, (child.name for child in children), strict=True))
        folder.name = new_name
        folder.save(update_fields=["name"])
        Folder.objects.bulk_update(children, ["name"])
        _rename_subscriptions(mailbox, renamed)
        publish_on_commit(ChangeEvent(mailbox.pk, folder.pk, folder.highestmodseq, "folders"))
    return folder


def delete_folder(mailbox: Mailbox, name: str) -> None:
    """Delete a folder and its messages. Raises ``FolderNotFound``, ``FolderProtected`` for
    special folders, and ``FolderHasChildren`` (delete subfolders first, as Dovecot asks)."""
    with transaction.atomic():
        folder = get_folder(mailbox, name)
        if folder.role:
            raise FolderProtected(folder.name)
        if folder.pk not in lock_folders([folder.pk]):
            raise FolderNotFound(name)
        if Folder.objects.filter(
            mailbox=mailbox, name__startswith=folder.name + Folder.DELIMITER
        ).exists():
            raise FolderHasChildren(folder.name)
        messages = Message.objects.filter(folder=folder)
        size = messages.aggregate(total=Sum("size"))["total"] or 0
        shas = list(messages.values_list("blob_id", flat=True).distinct())
        messages.delete()
        charge(mailbox.pk, -size)
        blobstore.delete_unreferenced(shas)
        folder_id = folder.pk
        folder.delete()
        publish_on_commit(ChangeEvent(mailbox.pk, folder_id, 0, "folders"))


def _rename_subscriptions(mailbox: Mailbox, renamed: dict[str, str]) -> None:
    """Carry subscriptions from old names to new ones (the folder and its subfolders)."""
    subscribed = Subscription.objects.filter(mailbox=mailbox, name__in=list(renamed))
    names = list(subscribed.values_list("name", flat=True))
    if not names:
        return
    subscribed.delete()
    Subscription.objects.bulk_create(
        [Subscription(mailbox=mailbox, name=renamed[name]) for name in names],
        ignore_conflicts=True,
    )


def subscribe_folder(mailbox: Mailbox, name: str, subscribed: bool = True) -> None:
    """SUBSCRIBE (the folder must exist; raises ``FolderNotFound``) or UNSUBSCRIBE (RFC 3501
    §6.3.6-7). Unsubscribing works on the name alone, so a deleted folder's subscription can
    go; a name never subscribed is already unsubscribed. Raises ``InvalidFolderName``."""
    if subscribed:
        folder = get_folder(mailbox, name)
        subscriptions = Subscription.objects.filter(mailbox=mailbox)
        if subscriptions.filter(name=folder.name).exists():
            return
        if subscriptions.count() >= MAX_SUBSCRIPTIONS:
            raise MailError(f"[LIMIT] At most {MAX_SUBSCRIPTIONS} subscriptions")
        Subscription.objects.get_or_create(mailbox=mailbox, name=folder.name)
    else:
        Subscription.objects.filter(mailbox=mailbox, name=canonical_name(name)).delete()


def subscriptions(mailbox: Mailbox) -> set[str]:
    """The names the user is subscribed to, whether or not the folders exist."""
    return set(Subscription.objects.filter(mailbox=mailbox).values_list("name", flat=True))


def _rows(folder: Folder, uids: Uids, extra_filter=None) -> list[Message]:
    q, recheck = uid_q(uids)
    qs = Message.objects.filter(q, folder_id=folder.pk)
    if extra_filter:
        qs = qs.filter(**extra_filter)
    rows = list(qs.order_by("uid"))
    if recheck is not None:
        rows = [row for row in rows if row.uid in recheck]
    return rows


def _copy_rows(rows: list[Message], target: Folder) -> list[Message]:
    """Copies of the rows in the target folder, in the same order, with new UIDs."""
    if not rows:
        return []
    unseen = sum(1 for row in rows if not row.seen)
    first_uid, modseq = bump_folder(target.pk, new=len(rows), unseen=unseen)
    copies = []
    for offset, row in enumerate(rows):
        copy = Message(
            mailbox_id=target.mailbox_id,
            folder_id=target.pk,
            uid=first_uid + offset,
            modseq=modseq,
            **{name: getattr(row, name) for name in _COPY_FIELDS},
        )
        copies.append(copy)
    Message.objects.bulk_create(copies, batch_size=500)
    publish_on_commit(ChangeEvent(target.mailbox_id, target.pk, modseq, "new"))
    return copies


def _uid_map(rows: list[Message], copies: list[Message]) -> dict[int, int]:
    return {row.uid: copy.uid for row, copy in zip(rows, copies, strict=True)}


def copy_messages(source: Folder, uids: Uids, target: Folder) -> dict[int, int]:
    """Copy messages (flags and internal date kept) to another folder of the same mailbox.

    Returns the map old UID → new UID in ascending order (COPYUID, RFC 4315). The raw bytes are
    shared, but copies count against the quota. Raises ``QuotaExceeded``."""
    with transaction.atomic():
        lock_folders([source.pk, target.pk])
        rows = _rows(source, uids)
        copies = _copy_rows(rows, target)
        charge(target.mailbox_id, sum(row.size for row in rows), enforce=True)
        train_after_commit(None, target, (row.blob_id for row in rows))
    return _uid_map(rows, copies)


class _ExpungeRow(NamedTuple):
    pk: int
    uid: int
    seen: bool
    size: int
    blob_id: str


_DELETE_BATCH = 500


def _expunge_rows(folder: Folder, rows, moved_to: dict[int, int] | None = None) -> list[int]:
    """Delete the rows (``Message`` or ``_ExpungeRow``), leaving tombstones for QRESYNC; what
    refers to them follows ``moved_to`` (old pk -> new pk) or is released. The caller holds the
    folder's lock (:func:`lock_folders`) and read the rows under it.

    The counters, tombstones and quota follow the rows this statement really deleted
    (``DELETE ... RETURNING``), not the list given: a row someone else deleted first is never
    counted twice (issue 15)."""
    if not rows:
        return []
    # Hand-written statements: EXPUNGE is on every IMAP client's hot path, where the ORM's
    # per-statement cost was most of its time. The ORM's on_delete is applied first, by hand.
    release_references([row.pk for row in rows], moved_to)
    deleted: list[_ExpungeRow] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _DELETE_BATCH):
            batch = [row.pk for row in rows[start : start + _DELETE_BATCH]]
            cursor.execute(
                f"DELETE FROM {Message._meta.db_table} WHERE folder_id = %s AND id IN"
                f" ({', '.join(['%s'] * len(batch))}) RETURNING id, uid, seen, size, blob_id",
                [folder.pk, *batch],
            )
            deleted.extend(_ExpungeRow(*row) for row in cursor.fetchall())
        if not deleted:
            return []
        deleted.sort(key=lambda row: row.uid)
        unseen = sum(1 for row in deleted if not row.seen)
        _, modseq = bump_folder(folder.pk, unseen=-unseen, expunged=len(deleted))
        for start in range(0, len(deleted), _DELETE_BATCH):
            batch = deleted[start : start + _DELETE_BATCH]
            cursor.execute(
                f"INSERT INTO {ExpungedMessage._meta.db_table} (folder_id, uid, modseq) VALUES "
                + ", ".join(["(%s, %s, %s)"] * len(batch)),
                [value for row in batch for value in (folder.pk, row.uid, modseq)],
            )
    charge(folder.mailbox_id, -sum(row.size for row in deleted))
    blobstore.delete_unreferenced(row.blob_id for row in deleted)
    publish_on_commit(ChangeEvent(folder.mailbox_id, folder.pk, modseq, "expunge"))
    folder.highestmodseq = modseq
    return [row.uid for row in deleted]


def move_messages(source: Folder, uids: Uids, target: Folder) -> dict[int, int]:
    """Move messages atomically: each gets a new UID in the target and is expunged from the
    source (RFC 6851 §3.1). Returns old UID → new UID. Moving into the source folder itself is
    allowed (RFC 6851 does not forbid it; Dovecot does it): the messages get new UIDs there."""
    with transaction.atomic():
        lock_folders([source.pk, target.pk])
        rows = _rows(source, uids)
        copies = _copy_rows(rows, target)
        charge(target.mailbox_id, sum(row.size for row in rows))
        moved_to = {row.pk: copy.pk for row, copy in zip(rows, copies, strict=True)}
        _expunge_rows(source, rows, moved_to)
        train_after_commit(source, target, (row.blob_id for row in rows))
    return _uid_map(rows, copies)


# Messages removed per transaction by :func:`empty_folder`.
EMPTY_BATCH = 2000


def _expunge_candidates(folder: Folder, uids: Uids, only_deleted: bool) -> list[_ExpungeRow]:
    where, params, recheck = uid_sql(uids)
    if only_deleted:
        where += " AND deleted = %s"
        params.append(True)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, uid, seen, size, blob_id FROM {Message._meta.db_table}"
            f" WHERE folder_id = %s{where} ORDER BY uid",
            [folder.pk, *params],
        )
        rows = cursor.fetchall()
    return [_ExpungeRow(*row) for row in rows if recheck is None or row[1] in recheck]


def expunge(folder: Folder, uids: Uids = None, *, only_deleted: bool = True) -> list[int]:
    """Remove messages from a folder for good; return their UIDs in ascending order.

    By default only messages flagged ``\\Deleted`` go (IMAP EXPUNGE and UID EXPUNGE, RFC 3501
    §6.4.3, RFC 4315 §2.1); ``only_deleted=False`` removes the given UIDs whatever their flags
    (POP3 DELE at QUIT, the webmail's delete from Trash)."""
    # Nothing to remove (no \Deleted message): no write transaction at all.
    if not _expunge_candidates(folder, uids, only_deleted):
        return []
    with transaction.atomic():
        lock_folders([folder.pk])
        return _expunge_rows(folder, _expunge_candidates(folder, uids, only_deleted))


def empty_folder(folder: Folder) -> int:
    """Remove every message of the folder for good, whatever its flags (the webmail's Empty
    Trash / Empty Junk); return how many went. Batches keep each transaction short on a folder
    of 100,000 messages, and a message delivered meanwhile (a higher UID) is left alone."""
    removed = 0
    last_uid = Folder.objects.values_list("uidnext", flat=True).get(pk=folder.pk) - 1
    while True:
        with transaction.atomic():
            lock_folders([folder.pk])
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT id, uid, seen, size, blob_id FROM {Message._meta.db_table}"
                    " WHERE folder_id = %s AND uid <= %s ORDER BY uid LIMIT %s",
                    [folder.pk, last_uid, EMPTY_BATCH],
                )
                rows = [_ExpungeRow(*row) for row in cursor.fetchall()]
            if not rows:
                return removed
            removed += len(_expunge_rows(folder, rows))


@dataclass
class Changes:
    messages: list[Message]
    expunged: list[int]
    highestmodseq: int
    # False when the answer is partial: more changes than ``limit``, or ``modseq`` older than
    # the purged tombstones (services/tombstones.py). The caller reloads the whole list.
    complete: bool = True


def changes_since(folder: Folder, modseq: int, limit: int | None = None) -> Changes:
    """Messages added or changed, and UIDs expunged, after ``modseq`` (RFC 7162), by UID. With
    ``limit``, at most that many of each (the most recent changes) are loaded, so a client
    asking for changes since 0 never loads a whole folder (issue 12)."""
    highest, floor = Folder.objects.values_list(
        "highestmodseq", "expunged_purged_modseq").get(pk=folder.pk)
    changed = Message.objects.filter(folder_id=folder.pk, modseq__gt=modseq)
    gone = ExpungedMessage.objects.filter(folder_id=folder.pk, modseq__gt=modseq)
    if limit is None:
        messages = list(changed.order_by("uid"))
        expunged = list(gone.order_by("uid").values_list("uid", flat=True))
        return Changes(messages, expunged, highest, complete=modseq >= floor)
    messages = list(changed.order_by("-modseq")[: limit + 1])
    expunged = list(gone.order_by("-modseq").values_list("uid", flat=True)[: limit + 1])
    complete = len(messages) <= limit and len(expunged) <= limit and modseq >= floor
    messages = sorted(messages[:limit], key=lambda m: m.uid)
    return Changes(messages, sorted(expunged[:limit]), highest, complete=complete)
