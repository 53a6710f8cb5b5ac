"""Flags: set, add or remove system flags and keywords on messages of a folder (IMAP STORE,
RFC 3501 §6.4.6; the webmail's read/flag actions; POP3 never changes flags)."""

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import connection, transaction

from mailcore.events import ChangeEvent, publish_on_commit
from mailcore.models import Folder, Message
from mailcore.models.message import FLAG_FIELDS, SYSTEM_FLAGS
from mailcore.services.common import FlagSet, Uids, bump_folder, lock_folders, uid_sql

MODES = ("replace", "add", "remove")
_FIELDS = tuple(FLAG_FIELDS.values())
_TABLE = Message._meta.db_table
UPDATE_BATCH = 500


@dataclass
class FlagChange:
    uid: int
    flags: list[str]
    modseq: int


@dataclass
class FlagResult:
    changed: list[FlagChange]
    modified: list[int]  # UIDs left alone because they changed after unchanged_since (RFC 7162)
    modseq: int
    # Every addressed message as it is now: (uid, modseq, seen, answered, flagged, deleted,
    # draft, keywords), by UID (what IMAP STORE answers without .SILENT).
    rows: list[tuple] = field(default_factory=list)


def _read(folder_id: int, uids: Uids) -> list[list]:
    """``[id, uid, modseq, seen, answered, flagged, deleted, draft, keywords]`` by UID."""
    where, params, recheck = uid_sql(uids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, uid, modseq, {', '.join(_FIELDS)}, keywords FROM {_TABLE}"
            f" WHERE folder_id = %s{where} ORDER BY uid",
            [folder_id, *params],
        )
        rows = cursor.fetchall()
    out = []
    for row in rows:
        if recheck is not None and row[1] not in recheck:
            continue
        keywords = row[8]
        if isinstance(keywords, str | bytes):
            keywords = json.loads(keywords)
        out.append([row[0], row[1], row[2], *map(bool, row[3:8]), list(keywords or ())])
    return out


def _plan(rows: list[list], wanted: FlagSet, mode: str, unchanged_since: int | None):
    """Apply the change to the rows in memory; return (rows to save, modified UIDs, unseen
    delta)."""
    to_save: list[list] = []
    modified: list[int] = []
    unseen_delta = 0
    for row in rows:
        if unchanged_since is not None and row[2] > unchanged_since:
            modified.append(row[1])
            continue
        before = row[3:9]
        flags = list(row[3:8])
        for i, name in enumerate(_FIELDS):
            if mode == "replace":
                flags[i] = wanted.system.get(name, False)
            elif name in wanted.system:
                flags[i] = mode == "add"
        keywords = row[8]
        if mode == "replace":
            keywords = list(wanted.keywords)
        elif mode == "add":
            keywords = keywords + [k for k in wanted.keywords if k not in keywords]
        else:
            keywords = [k for k in keywords if k not in wanted.keywords]
        after = [*flags, keywords]
        if after != before:
            unseen_delta += int(before[0]) - int(flags[0])
            row[3:9] = after
            to_save.append(row)
    return to_save, modified, unseen_delta


def _flag_names(row: list) -> list[str]:
    return [flag for flag, on in zip(SYSTEM_FLAGS, row[3:8], strict=True) if on] + row[8]


def set_flags(
    folder: Folder,
    uids: Uids,
    flags: Iterable[str],
    mode: str = "replace",
    *,
    unchanged_since: int | None = None,
) -> FlagResult:
    """Replace, add or remove flags on the messages with the given UIDs.

    Only messages whose flags really change get a new mod-sequence (one for the whole call).
    With ``unchanged_since`` (CONDSTORE), messages modified after it are not touched and are
    reported in ``modified``. Raises ``ValueError`` for an unknown mode.

    The rows are read first without a transaction: when nothing would change (a client
    re-setting \\Seen), the call takes no write lock and commits nothing, as if it had run at
    the moment of that read. Otherwise they are read again inside the write transaction, under
    the folder's lock, so that two sessions changing the same messages never both count the
    same change of \\Seen (issue 15)."""
    if mode not in MODES:
        raise ValueError(f"unknown flag mode {mode!r}")
    wanted = FlagSet.parse(flags)
    rows = _read(folder.pk, uids)
    to_save, modified, unseen_delta = _plan(rows, wanted, mode, unchanged_since)
    if to_save:
        with transaction.atomic():
            lock_folders([folder.pk])
            rows = _read(folder.pk, uids)
            to_save, modified, unseen_delta = _plan(rows, wanted, mode, unchanged_since)
            if to_save:
                _, modseq = bump_folder(folder.pk, unseen=unseen_delta)
                _save(to_save, modseq)
                publish_on_commit(ChangeEvent(folder.mailbox_id, folder.pk, modseq, "flags"))
    result_rows = [(row[1], row[2], *row[3:9]) for row in rows]
    if not to_save:
        return FlagResult([], modified, folder.highestmodseq, result_rows)
    folder.highestmodseq = modseq
    return FlagResult(
        [FlagChange(row[1], _flag_names(row), modseq) for row in to_save], modified, modseq,
        result_rows,
    )


def _save(rows: list[list], modseq: int) -> None:
    """One UPDATE per distinct new flag state (a STORE gives most rows the same one)."""
    keywords_field = Message._meta.get_field("keywords")
    groups: dict[tuple, list[int]] = defaultdict(list)
    for row in rows:
        row[2] = modseq
        groups[(*row[3:8], tuple(row[8]))].append(row[0])
    assignments = ", ".join(f"{name} = %s" for name in _FIELDS)
    with connection.cursor() as cursor:
        for state, ids in groups.items():
            keywords = keywords_field.get_db_prep_save(list(state[5]), connection)
            for start in range(0, len(ids), UPDATE_BATCH):
                batch = ids[start : start + UPDATE_BATCH]
                cursor.execute(
                    f"UPDATE {_TABLE} SET {assignments}, keywords = %s, modseq = %s"
                    f" WHERE id IN ({', '.join(['%s'] * len(batch))})",
                    [*state[:5], keywords, modseq, *batch],
                )
