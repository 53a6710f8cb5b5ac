"""Helpers shared by the mailbox services: UID sets, flag parsing, mod-sequence allocation, and
the store's lock order.

Lock order (PostgreSQL, where writers run side by side; SQLite's IMMEDIATE transactions hold the
database write lock from their first statement, so there writers never interleave). A write
transaction takes its row locks in this order, each kind in ascending key order:

1. the folders it changes (:func:`lock_folders`, or :func:`bump_folder` for a new message's
   folder), *before* it reads the messages it will change;
2. the mailboxes whose quota it charges (``services.quota.charge``);
3. the message rows it updates or deletes (only ever by the holder of their folder's lock);
4. the blobs it refers to or deletes (``mailcore.blobstore``).

Reading the messages before the folder's lock acted on a stale read: two sessions expunging the
same messages both counted them, driving the folder's counters below zero, and two MOVEs both
copied them (issue 15); taking the folder and mailbox locks in opposite orders (EXPUNGE: folder
then mailbox; APPEND: mailbox then folder) deadlocked."""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

from mailcore.exceptions import FolderNotFound
from mailcore.models import Folder
from mailcore.models.message import FLAG_FIELDS, Message

MAX_RANGES_IN_QUERY = 200
MAX_UIDS_IN_QUERY = 500
_MESSAGE = Message._meta.db_table
_FOLDER = Folder._meta.db_table


@dataclass(frozen=True)
class UidRanges:
    """A set of UIDs as inclusive ranges, so ``1:4294967295`` costs one pair, not 4 billion."""

    ranges: tuple[tuple[int, int], ...]

    def __contains__(self, uid: int) -> bool:
        return any(lo <= uid <= hi for lo, hi in self.ranges)


Uids = Iterable[int] | UidRanges | None


def uid_q(uids: Uids) -> tuple[Q, UidRanges | set | None]:
    """:func:`uid_sql` as an ORM filter on ``Message``: ``(Q, recheck)``."""
    where, params, recheck = uid_sql(uids, f"{_MESSAGE}.uid")
    if not where:
        return Q(), None
    return Q(RawSQL(where.removeprefix(" AND "), params, output_field=BooleanField())), recheck


@dataclass
class FlagSet:
    """Flags split into system-flag fields and keywords. ``\\Recent`` is session state in IMAP
    and is never stored (RFC 3501 §2.3.2)."""

    system: dict[str, bool]
    keywords: list[str]

    @classmethod
    def parse(cls, flags: Iterable[str]) -> "FlagSet":
        system: dict[str, bool] = {}
        keywords: list[str] = []
        for flag in flags:
            field_name = FLAG_FIELDS.get(flag.lower())
            if field_name:
                system[field_name] = True
            elif flag.lower() == "\\recent" or flag.startswith("\\"):
                continue
            elif flag and flag not in keywords:
                keywords.append(flag)
        return cls(system=system, keywords=keywords)


def bump_folder(
    folder_id: int, *, new: int = 0, unseen: int = 0, expunged: int = 0
) -> tuple[int, int]:
    """The one UID and mod-sequence allocator: advance a folder's HIGHESTMODSEQ (and UIDNEXT by
    ``new``) and adjust its counters. Every door that adds, changes or removes messages (delivery,
    APPEND, COPY, MOVE, STORE, EXPUNGE) calls it.

    Returns ``(first_new_uid, modseq)``: ``new`` consecutive UIDs sharing one mod-sequence. The
    UPDATE takes the folder's row lock (PostgreSQL) or runs under the database write lock
    (SQLite, IMMEDIATE transactions), so concurrent deliveries never get the same UID
    (RFC 3501 §2.3.1.1). Call inside a transaction, in the lock order above: a writer that
    counts existing messages (``unseen``, ``expunged``) must have counted them under
    :func:`lock_folders`. Raises ``FolderNotFound``.

    One ``UPDATE ... RETURNING``: it runs on every delivery, where it costs a fraction of two ORM
    queries. There is no fallback: SQLite older than 3.35 (no RETURNING) is refused at start by
    ``mailcore.db.sqlite3`` (Debian 12 ships 3.40)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_FOLDER} SET uidnext = uidnext + %s, highestmodseq = highestmodseq + 1,"
            " message_count = message_count + %s, unseen_count = unseen_count + %s"
            " WHERE id = %s RETURNING uidnext, highestmodseq",
            [new, new - expunged, unseen, folder_id],
        )
        row = cursor.fetchone()
    if row is None:
        raise FolderNotFound(f"folder {folder_id} no longer exists")
    uidnext, modseq = row
    return uidnext - new, modseq


def lock_folders(folder_ids: Iterable[int]) -> set[int]:
    """Take the row locks of the folders a write transaction is about to change, in ascending id
    order (step 1 of the lock order above), and return the ids of those that exist. Call it
    first in the transaction, before reading the messages to change: what is read afterwards
    stays true until the commit, since every writer of a folder's messages holds its lock.

    On SQLite this is a plain read: the transaction already holds the database write lock."""
    ids = sorted(set(folder_ids))
    if not ids:
        return set()
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {_FOLDER} WHERE id IN ({', '.join(['%s'] * len(ids))})"
            f" ORDER BY id{lock}",
            ids,
        )
        return {row[0] for row in cursor.fetchall()}


def uid_sql(uids: Uids, column: str = "uid") -> tuple[str, list, UidRanges | set | None]:
    """Like :func:`uid_q` for hand-written SQL: ``(" AND (...)", params, recheck)``, the
    condition starting with AND (empty for all UIDs), and the set to re-check in Python when
    the condition is only a bound (too many ranges or UIDs for one statement)."""
    if uids is None:
        return "", [], None
    if isinstance(uids, UidRanges):
        if not uids.ranges:
            return " AND 1 = 0", [], None
        if len(uids.ranges) <= MAX_RANGES_IN_QUERY:
            terms, params = [], []
            for lo, hi in uids.ranges:
                if lo == hi:
                    terms.append(f"{column} = %s")
                    params.append(lo)
                else:
                    terms.append(f"{column} BETWEEN %s AND %s")
                    params.extend((lo, hi))
            return " AND (" + " OR ".join(terms) + ")", params, None
        lo = min(r[0] for r in uids.ranges)
        hi = max(r[1] for r in uids.ranges)
        return f" AND {column} BETWEEN %s AND %s", [lo, hi], uids
    values = sorted(set(uids))
    if not values:
        return " AND 1 = 0", [], None
    if len(values) <= MAX_UIDS_IN_QUERY:
        return f" AND {column} IN ({', '.join(['%s'] * len(values))})", values, None
    return f" AND {column} BETWEEN %s AND %s", [values[0], values[-1]], set(values)

