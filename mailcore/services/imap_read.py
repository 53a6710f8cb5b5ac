"""Read-side services for IMAP sessions: the snapshot of a folder a session selects, the rows
FETCH formats (only the columns asked for), the raw bytes of messages, mailbox STATUS, and the
changes since the mod-sequence a session last saw (RFC 3501 §7.4.1 untagged updates).

Sequence numbers are not stored: they are the positions in the sorted UID list each session
keeps (RFC 3501 §2.3.1.2). Everything here only reads, except :func:`store_flags`, which wraps
:func:`mailcore.services.flags.set_flags`."""

import json
import threading
from array import array
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import NamedTuple

from django.db import connection

from mailcore.models import Blob, ExpungedMessage, Folder, Mailbox, Message, Subscription
from mailcore.services import tombstones
from mailcore.services.common import UidRanges, uid_sql
from mailcore.services.flags import set_flags
from mailcore.services.folders import get_folder

FLAG_COLUMNS = ("seen", "answered", "flagged", "deleted", "draft", "keywords")


class FlagRow(NamedTuple):
    """One message's flags as IMAP reports them in an untagged FETCH (RFC 3501 §7.4.2 FLAGS,
    RFC 7162 §3.1 MODSEQ): what STORE, QRESYNC and the updates of other sessions return."""

    uid: int
    modseq: int
    seen: bool
    answered: bool
    flagged: bool
    deleted: bool
    draft: bool
    keywords: list[str]


def _flag_row(row) -> FlagRow:
    """From ``(uid, modseq, *FLAG_COLUMNS)`` as read by SQL (keywords as JSON text or list)."""
    uid, modseq, seen, answered, flagged, deleted, draft, keywords = row
    return FlagRow(uid, modseq, bool(seen), bool(answered), bool(flagged), bool(deleted),
                   bool(draft), _json(keywords) or [])


@dataclass
class FolderSnapshot:
    folder: Folder
    uids: array  # sorted UIDs ('I': UIDs are 32-bit, RFC 3501 §2.3.1.1)
    first_unseen_uid: int | None
    keywords: list[str]


_MESSAGE = Message._meta.db_table
_FOLDER = Folder._meta.db_table
_SUBSCRIPTION = Subscription._meta.db_table
_EXPUNGED = ExpungedMessage._meta.db_table


class _Cached:
    """What this process last read of a folder: its UIDs and keywords as of ``modseq``."""

    __slots__ = ("uidvalidity", "modseq", "uids", "keywords")

    def __init__(self, uidvalidity: int, modseq: int, uids: array, keywords: dict):
        self.uidvalidity = uidvalidity
        self.modseq = modseq
        self.uids = uids
        self.keywords = keywords


# Folder id -> _Cached, least recently used first. Like Dovecot's index files, this spares a
# SELECT of a large folder reading every row again: it reads only what changed since (the
# mod-sequences and tombstones of RFC 7162). Bounded by the UIDs kept.
_snapshots: OrderedDict[int, _Cached] = OrderedDict()
_snapshots_lock = threading.Lock()
SNAPSHOT_CACHE_UIDS = 2_000_000


def _full_snapshot(folder: Folder) -> _Cached:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT uid FROM {_MESSAGE} WHERE folder_id = %s ORDER BY uid",
                       [folder.pk])
        uids = array("I", [row[0] for row in cursor.fetchall()])
        # The condition is that of the partial index message_keywords, word for word, so that
        # the database reads the index rather than every message.
        empty = "'[]'::jsonb" if connection.vendor == "postgresql" else "'[]'"
        cursor.execute(
            f"SELECT DISTINCT keywords FROM {_MESSAGE} WHERE folder_id = %s"
            f" AND NOT (keywords = {empty})",
            [folder.pk],
        )
        keywords: dict[str, None] = {}
        for (value,) in cursor.fetchall():
            for keyword in _json(value) or ():
                keywords[keyword] = None
    return _Cached(folder.uidvalidity, folder.highestmodseq, uids, keywords)


def _update_snapshot(cached: _Cached, folder: Folder) -> _Cached:
    """The cached snapshot brought up to the folder's HIGHESTMODSEQ from the rows changed and
    the UIDs expunged since (a message changed or added has a newer mod-sequence)."""
    uids = array("I", cached.uids)
    keywords = dict(cached.keywords)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT uid FROM {_EXPUNGED} WHERE folder_id = %s AND modseq > %s",
            [folder.pk, cached.modseq],
        )
        gone = {row[0] for row in cursor.fetchall()}
        cursor.execute(
            f"SELECT uid, keywords FROM {_MESSAGE} WHERE folder_id = %s AND modseq > %s"
            " ORDER BY uid",
            [folder.pk, cached.modseq],
        )
        changed = cursor.fetchall()
    if gone:
        uids = array("I", [uid for uid in uids if uid not in gone])
    last = uids[-1] if uids else 0
    for uid, value in changed:
        if uid > last and uid not in gone:
            uids.append(uid)
            last = uid
        for keyword in _json(value) or ():
            keywords[keyword] = None
    return _Cached(folder.uidvalidity, folder.highestmodseq, uids, keywords)


def select_folder(mailbox: Mailbox, name: str) -> FolderSnapshot:
    """The folder and its sorted UID list, for SELECT/EXAMINE. Raises ``FolderNotFound``.

    The folder row (with HIGHESTMODSEQ) is read before the messages: a change racing with the
    snapshot is then reported again by :func:`changes`, never lost. Keywords once used in the
    folder stay in its FLAGS list (Dovecot keeps them too; RFC 3501 §7.2.6 "flags defined")."""
    folder = get_folder(mailbox, name)
    with _snapshots_lock:
        cached = _snapshots.get(folder.pk)
    if cached is None or cached.uidvalidity != folder.uidvalidity:
        cached = _full_snapshot(folder)
    elif cached.modseq != folder.highestmodseq:
        cached = _update_snapshot(cached, folder)
    with _snapshots_lock:
        _snapshots[folder.pk] = cached
        _snapshots.move_to_end(folder.pk)
        total = sum(len(c.uids) for c in _snapshots.values())
        while total > SNAPSHOT_CACHE_UIDS and len(_snapshots) > 1:
            _id, dropped = _snapshots.popitem(last=False)
            total -= len(dropped.uids)
    uids = array("I", cached.uids)  # the session changes its copy
    first_unseen = None
    if folder.unseen_count:
        if folder.unseen_count == len(uids):
            first_unseen = uids[0]
        else:
            with connection.cursor() as cursor:
                cursor.execute(  # the partial index message_unseen
                    f"SELECT uid FROM {_MESSAGE} WHERE folder_id = %s AND NOT seen"
                    " ORDER BY uid LIMIT 1",
                    [folder.pk],
                )
                row = cursor.fetchone()
            first_unseen = row[0] if row else None
    return FolderSnapshot(folder, uids, first_unseen, list(cached.keywords))


_RAW_COLUMNS = {"seen", "answered", "flagged", "deleted", "draft", "keywords", "envelope",
                "structure", "size", "blob_id", "modseq"}
_JSON_COLUMNS = {"keywords", "envelope", "structure"}


def _json(value):
    return json.loads(value) if isinstance(value, str | bytes) else value


def fetch_rows(
    folder_id: int, lo: int, hi: int, columns: tuple[str, ...], changed_since: int | None = None
) -> list[tuple]:
    """``(uid, *columns)`` of the folder's messages with lo <= UID <= hi, by UID; only those
    modified after ``changed_since`` when given (CHANGEDSINCE, RFC 7162 §3.1.4.1).

    Plain columns go through a cursor with JSON decoded here: at 20,000 rows the ORM's per-row
    work is most of ``FETCH 1:* (UID FLAGS ENVELOPE)``."""
    if set(columns) <= _RAW_COLUMNS:
        names = ", ".join(Message._meta.get_field(c).column for c in ("uid", *columns))
        since = "" if changed_since is None else " AND modseq > %s"
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {names} FROM {Message._meta.db_table} WHERE folder_id = %s AND "
                f"uid >= %s AND uid <= %s{since} ORDER BY uid",
                [folder_id, lo, hi, *([] if changed_since is None else [changed_since])],
            )
            rows = cursor.fetchall()
        decode = [i + 1 for i, c in enumerate(columns) if c in _JSON_COLUMNS]
        if not decode:
            return rows
        out = []
        for row in rows:
            row = list(row)
            for i in decode:
                row[i] = _json(row[i])
            out.append(row)
        return out
    messages = Message.objects.filter(folder_id=folder_id, uid__gte=lo, uid__lte=hi)
    if changed_since is not None:
        messages = messages.filter(modseq__gt=changed_since)
    return list(messages.order_by("uid").values_list("uid", *columns))


def load_blobs(shas: list[str]) -> dict[str, bytes]:
    return {sha: bytes(data) for sha, data in Blob.objects.filter(pk__in=shas).values_list(
        "sha256", "data")}


def store_flags(folder: Folder, uids: UidRanges, flags: list[str], mode: str, want_all: bool,
                unchanged_since: int | None = None):
    """STORE (RFC 3501 §6.4.6): change flags; return ``(modseq or None when nothing changed,
    changed UIDs, rows, modified UIDs)``, rows being the :class:`FlagRow` of every addressed
    message when ``want_all``, else of the changed ones only; modified UIDs are those
    ``unchanged_since`` (RFC 7162 §3.1.3) left alone."""
    result = set_flags(folder, uids, flags, mode, unchanged_since=unchanged_since)
    modseq = result.modseq if result.changed else None
    changed = [change.uid for change in result.changed]
    wanted = None if want_all else set(changed)
    rows = [_flag_row(row) for row in result.rows if wanted is None or row[0] in wanted]
    return modseq, changed, rows, result.modified


def max_modseq(folder_id: int, uids: list[int]) -> int:
    """The highest mod-sequence among the messages (SEARCH with MODSEQ, RFC 7162 §3.1.5)."""
    if not uids:
        return 0
    ranges = []
    for uid in sorted(uids):
        if ranges and uid == ranges[-1][1] + 1:
            ranges[-1][1] = uid
        else:
            ranges.append([uid, uid])
    where, params, recheck = uid_sql(UidRanges(tuple(map(tuple, ranges))))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT uid, modseq FROM {_MESSAGE} WHERE folder_id = %s{where}",
            [folder_id, *params],
        )
        return max((m for uid, m in cursor.fetchall() if recheck is None or uid in recheck),
                   default=0)


def vanished_since(folder_id: int, since: int, uids: UidRanges | None) -> list[int]:
    """UIDs expunged after mod-sequence ``since``, among ``uids`` when given (VANISHED
    (EARLIER), RFC 7162 §3.2.5.1 and §3.2.6)."""
    floor, uidnext = Folder.objects.values_list(
        "expunged_purged_modseq", "uidnext").get(pk=folder_id)
    if since < floor:
        # Tombstones up to ``floor`` were purged: every UID not in the folder (§3.2.5.2).
        return tombstones.absent_uids(folder_id, uidnext, uids)
    where, params, recheck = uid_sql(uids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT uid FROM {_EXPUNGED} WHERE folder_id = %s AND modseq > %s{where}"
            " ORDER BY uid",
            [folder_id, since, *params],
        )
        return [uid for (uid,) in cursor.fetchall() if recheck is None or uid in recheck]


def changed_since(folder_id: int, since: int, uids: UidRanges | None) -> list[FlagRow]:
    """The flags of the messages changed after ``since``, among ``uids`` when given (QRESYNC
    SELECT, RFC 7162 §3.2.5)."""
    where, params, recheck = uid_sql(uids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT uid, modseq, {', '.join(FLAG_COLUMNS)} FROM {_MESSAGE}"
            f" WHERE folder_id = %s AND modseq > %s{where} ORDER BY uid",
            [folder_id, since, *params],
        )
        rows = cursor.fetchall()
    return [_flag_row(row) for row in rows if recheck is None or row[0] in recheck]


@dataclass
class StatusInfo:
    messages: int
    unseen: int
    uidnext: int
    uidvalidity: int
    highestmodseq: int
    recent_candidates: list[int] = field(default_factory=list)


def folder_status(mailbox: Mailbox, name: str) -> tuple[Folder, StatusInfo]:
    """STATUS (RFC 3501 §6.3.10) from the folder's kept counters, without counting rows."""
    folder = get_folder(mailbox, name)
    return folder, StatusInfo(
        folder.message_count, folder.unseen_count, folder.uidnext, folder.uidvalidity,
        folder.highestmodseq,
    )


@dataclass
class FolderChanges:
    highestmodseq: int
    uidnext: int
    changed: list[FlagRow]
    expunged: list[int]


def changes(folder_id: int, since: int) -> FolderChanges | None:
    """What changed in the folder after mod-sequence ``since``; None when nothing did (one
    small query). Raises ``Folder.DoesNotExist`` when the folder is gone.

    No transaction (SQLite transactions here take the write lock): the folder row is read first,
    so a change racing with these queries is reported now and again next time, never lost; the
    session ignores what it already knows."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT highestmodseq, uidnext, expunged_purged_modseq FROM {_FOLDER}"
                       " WHERE id = %s", [folder_id])
        row = cursor.fetchone()
        if row is None:
            raise Folder.DoesNotExist(folder_id)
        highest, uidnext, floor = row
        if highest <= since:
            return None
        cursor.execute(
            f"SELECT uid, modseq, {', '.join(FLAG_COLUMNS)} FROM {_MESSAGE}"
            " WHERE folder_id = %s AND modseq > %s ORDER BY uid",
            [folder_id, since],
        )
        changed = [_flag_row(row) for row in cursor.fetchall()]
        cursor.execute(
            f"SELECT uid FROM {_EXPUNGED} WHERE folder_id = %s AND modseq > %s ORDER BY uid",
            [folder_id, since],
        )
        expunged = [row[0] for row in cursor.fetchall()]
    if since < floor:
        expunged = tombstones.absent_uids(folder_id, uidnext, None)
    return FolderChanges(highest, uidnext, changed, expunged)


def list_folder_rows(mailbox: Mailbox) -> list[tuple[str, str, bool]]:
    """``(name, role, subscribed)`` of every folder of the mailbox, by name."""
    return [(row.name, row.role, row.subscribed) for row in list_folders_status(mailbox)]


class ListedFolder(NamedTuple):
    """A folder as LIST sees it, with its STATUS counters (RFC 5819: one query for all)."""

    id: int
    name: str
    role: str
    subscribed: bool
    status: StatusInfo


def list_folders_status(mailbox: Mailbox) -> list[ListedFolder]:
    """Every folder of the mailbox, by name, with subscription and the counters STATUS reads
    (kept in the folder row, never counted): one query, however many folders."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT f.id, f.name, f.role, s.id IS NOT NULL, f.message_count, f.unseen_count,"
            f" f.uidnext, f.uidvalidity, f.highestmodseq FROM {_FOLDER} f"
            f" LEFT JOIN {_SUBSCRIPTION} s ON s.mailbox_id = f.mailbox_id AND s.name = f.name"
            " WHERE f.mailbox_id = %s",
            [mailbox.pk],
        )
        rows = cursor.fetchall()
    # Sorted here: the database's collation of names may differ from Python's.
    return sorted(
        (ListedFolder(pk, name, role, bool(subscribed), StatusInfo(*counters))
         for pk, name, role, subscribed, *counters in rows),
        key=lambda row: row.name,
    )


# Folders per statement of :func:`count_above`.
_COUNT_BATCH = 200


def count_above(thresholds: dict[int, int]) -> dict[int, int]:
    """Messages with a UID above the given one, per folder id (STATUS RECENT of many folders,
    RFC 5819): one query per 200 folders."""
    counts: dict[int, int] = {}
    items = list(thresholds.items())
    with connection.cursor() as cursor:
        for start in range(0, len(items), _COUNT_BATCH):
            batch = items[start : start + _COUNT_BATCH]
            cursor.execute(
                f"SELECT folder_id, COUNT(*) FROM {_MESSAGE} WHERE "
                + " OR ".join(["(folder_id = %s AND uid > %s)"] * len(batch))
                + " GROUP BY folder_id",
                [value for pair in batch for value in pair],
            )
            counts.update(cursor.fetchall())
    return counts


def subscribed_names(mailbox: Mailbox) -> list[str]:
    """Every name the user subscribed to, existing folder or not (RFC 3501 §6.3.6), by name."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT name FROM {_SUBSCRIPTION} WHERE mailbox_id = %s", [mailbox.pk])
        return sorted(name for (name,) in cursor.fetchall())
