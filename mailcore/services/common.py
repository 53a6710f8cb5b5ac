"""Helpers shared by the mailbox services: UID sets, flag parsing, mod-sequence allocation."""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q

from mailcore.exceptions import FolderNotFound
from mailcore.models.message import FLAG_FIELDS

MAX_RANGES_IN_QUERY = 200
MAX_UIDS_IN_QUERY = 500


@dataclass(frozen=True)
class UidRanges:
    """A set of UIDs as inclusive ranges, so ``1:4294967295`` costs one pair, not 4 billion."""

    ranges: tuple[tuple[int, int], ...]

    def __contains__(self, uid: int) -> bool:
        return any(lo <= uid <= hi for lo, hi in self.ranges)


Uids = Iterable[int] | UidRanges | None


def uid_q(uids: Uids) -> tuple[Q, UidRanges | None]:
    """A filter for the UIDs, and a set to re-check in Python when the filter is only a bound."""
    if uids is None:
        return Q(), None
    if isinstance(uids, UidRanges):
        if not uids.ranges:
            return Q(pk__in=[]), None
        if len(uids.ranges) <= MAX_RANGES_IN_QUERY:
            q = Q()
            for lo, hi in uids.ranges:
                q |= Q(uid=lo) if lo == hi else Q(uid__gte=lo, uid__lte=hi)
            return q, None
        lo = min(r[0] for r in uids.ranges)
        hi = max(r[1] for r in uids.ranges)
        return Q(uid__gte=lo, uid__lte=hi), uids
    return Q(uid__in=list(uids)), None


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
    """Advance a folder's HIGHESTMODSEQ (and UIDNEXT by ``new``) and adjust its counters.

    Returns ``(first_new_uid, modseq)``. The UPDATE takes the folder's row lock (PostgreSQL) or
    runs under the database write lock (SQLite, IMMEDIATE transactions), so concurrent deliveries
    never get the same UID. Call inside a transaction."""
    # Hand-written SQL: this runs on every delivery, and one UPDATE ... RETURNING (PostgreSQL,
    # SQLite >= 3.35) costs a fraction of two ORM queries.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE mailcore_folder SET uidnext = uidnext + %s, highestmodseq = highestmodseq + 1,"
            " message_count = message_count + %s, unseen_count = unseen_count + %s"
            " WHERE id = %s RETURNING uidnext, highestmodseq",
            [new, new - expunged, unseen, folder_id],
        )
        row = cursor.fetchone()
    if row is None:
        raise FolderNotFound(f"folder {folder_id} no longer exists")
    uidnext, modseq = row
    return uidnext - new, modseq


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

