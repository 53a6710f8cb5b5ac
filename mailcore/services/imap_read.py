"""Read-side services for IMAP sessions: the snapshot of a folder a session selects, the rows
FETCH formats (only the columns asked for), the raw bytes of messages, mailbox STATUS, and the
changes since the mod-sequence a session last saw (RFC 3501 §7.4.1 untagged updates).

Sequence numbers are not stored: they are the positions in the sorted UID list each session
keeps (RFC 3501 §2.3.1.2). Everything here only reads, except :func:`store_flags`, which wraps
:func:`mailcore.services.flags.set_flags`."""

import json
from array import array
from dataclasses import dataclass, field

from django.db import connection

from mailcore.models import Blob, ExpungedMessage, Folder, Mailbox, Message
from mailcore.services.common import UidRanges
from mailcore.services.flags import set_flags
from mailcore.services.mailboxes import get_folder

FLAG_COLUMNS = ("seen", "answered", "flagged", "deleted", "draft", "keywords")


@dataclass
class FolderSnapshot:
    folder: Folder
    uids: array  # sorted UIDs ('I': UIDs are 32-bit, RFC 3501 §2.3.1.1)
    first_unseen_uid: int | None
    keywords: list[str]


def select_folder(mailbox: Mailbox, name: str) -> FolderSnapshot:
    """The folder and its sorted UID list, for SELECT/EXAMINE. Raises ``FolderNotFound``.

    The folder row (with HIGHESTMODSEQ) is read before the messages: a change racing with the
    snapshot is then reported again by :func:`changes`, never lost."""
    folder = get_folder(mailbox, name)
    messages = Message.objects.filter(folder_id=folder.pk)
    # A plain cursor: the ORM's per-row overhead is most of SELECT's time at 20,000 messages.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT uid FROM {Message._meta.db_table} WHERE folder_id = %s ORDER BY uid",
            [folder.pk],
        )
        uids = array("I", [row[0] for row in cursor.fetchall()])
    first_unseen = (
        messages.filter(seen=False).order_by("uid").values_list("uid", flat=True).first()
        if folder.unseen_count
        else None
    )
    keywords: dict[str, None] = {}
    for value in messages.exclude(keywords=[]).values_list("keywords", flat=True).distinct():
        for keyword in value or ():
            keywords[keyword] = None
    return FolderSnapshot(folder, uids, first_unseen, list(keywords))


_RAW_COLUMNS = {"seen", "answered", "flagged", "deleted", "draft", "keywords", "envelope",
                "structure", "size", "blob_id"}
_JSON_COLUMNS = {"keywords", "envelope", "structure"}


def _json(value):
    return json.loads(value) if isinstance(value, str | bytes) else value


def fetch_rows(folder_id: int, lo: int, hi: int, columns: tuple[str, ...]) -> list[tuple]:
    """``(uid, *columns)`` of the folder's messages with lo <= UID <= hi, by UID.

    Plain columns go through a cursor with JSON decoded here: at 20,000 rows the ORM's per-row
    work is most of ``FETCH 1:* (UID FLAGS ENVELOPE)``."""
    if set(columns) <= _RAW_COLUMNS:
        names = ", ".join(Message._meta.get_field(c).column for c in ("uid", *columns))
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {names} FROM {Message._meta.db_table} WHERE folder_id = %s AND "
                "uid >= %s AND uid <= %s ORDER BY uid",
                [folder_id, lo, hi],
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
    return list(
        Message.objects.filter(folder_id=folder_id, uid__gte=lo, uid__lte=hi)
        .order_by("uid")
        .values_list("uid", *columns)
    )


def load_blobs(shas: list[str]) -> dict[str, bytes]:
    return {sha: bytes(data) for sha, data in Blob.objects.filter(pk__in=shas).values_list(
        "sha256", "data")}


def message_flags(folder_id: int, uids: UidRanges) -> list[tuple]:
    """``(uid, seen, answered, flagged, deleted, draft, keywords)`` for the UIDs."""
    from mailcore.services.common import uid_q

    q, recheck = uid_q(uids)
    rows = Message.objects.filter(q, folder_id=folder_id).order_by("uid").values_list(
        "uid", *FLAG_COLUMNS
    )
    return [row for row in rows if recheck is None or row[0] in recheck]


def store_flags(folder: Folder, uids: UidRanges, flags: list[str], mode: str, want_all: bool):
    """STORE (RFC 3501 §6.4.6): change flags; return ``(modseq or None when nothing changed,
    changed UIDs, rows)``, rows being the current flags of every addressed message when
    ``want_all`` (else empty: .SILENT answers nothing)."""
    result = set_flags(folder, uids, flags, mode)
    modseq = result.modseq if result.changed else None
    changed = [change.uid for change in result.changed]
    return modseq, changed, message_flags(folder.pk, uids) if want_all else []


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
    changed: list[tuple]  # (uid, modseq, seen, answered, flagged, deleted, draft, keywords)
    expunged: list[int]


def changes(folder_id: int, since: int) -> FolderChanges | None:
    """What changed in the folder after mod-sequence ``since``; None when nothing did (one
    small query). Raises ``Folder.DoesNotExist`` when the folder is gone.

    No transaction (SQLite transactions here take the write lock): the folder row is read first,
    so a change racing with these queries is reported now and again next time, never lost; the
    session ignores what it already knows."""
    highest, uidnext = Folder.objects.values_list("highestmodseq", "uidnext").get(pk=folder_id)
    if highest <= since:
        return None
    changed = list(
        Message.objects.filter(folder_id=folder_id, modseq__gt=since)
        .order_by("uid")
        .values_list("uid", "modseq", *FLAG_COLUMNS)
    )
    expunged = list(
        ExpungedMessage.objects.filter(folder_id=folder_id, modseq__gt=since)
        .order_by("uid")
        .values_list("uid", flat=True)
    )
    return FolderChanges(highest, uidnext, changed, expunged)


def list_folder_rows(mailbox: Mailbox) -> list[tuple[str, str, bool]]:
    """``(name, role, subscribed)`` of every folder of the mailbox, by name."""
    return list(
        Folder.objects.filter(mailbox=mailbox).order_by("name").values_list(
            "name", "role", "subscribed"
        )
    )
