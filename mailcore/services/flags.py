"""Flags: set, add or remove system flags and keywords on messages of a folder (IMAP STORE,
RFC 3501 §6.4.6; the webmail's read/flag actions; POP3 never changes flags)."""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction

from mailcore.events import ChangeEvent, publish_on_commit
from mailcore.models import Folder, Message
from mailcore.models.message import FLAG_FIELDS
from mailcore.services.common import FlagSet, Uids, bump_folder, uid_q

MODES = ("replace", "add", "remove")
_FIELDS = tuple(FLAG_FIELDS.values())


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
    reported in ``modified``. Raises ``ValueError`` for an unknown mode."""
    if mode not in MODES:
        raise ValueError(f"unknown flag mode {mode!r}")
    wanted = FlagSet.parse(flags)
    q, recheck = uid_q(uids)
    with transaction.atomic():
        rows = list(
            Message.objects.filter(q, folder_id=folder.pk)
            .only("id", "uid", "modseq", "keywords", *_FIELDS)
            .order_by("uid")
        )
        if recheck is not None:
            rows = [row for row in rows if row.uid in recheck]
        to_save: list[Message] = []
        modified: list[int] = []
        unseen_delta = 0
        for row in rows:
            if unchanged_since is not None and row.modseq > unchanged_since:
                modified.append(row.uid)
                continue
            before = (tuple(getattr(row, f) for f in _FIELDS), tuple(row.keywords))
            was_seen = row.seen
            for name in _FIELDS:
                if mode == "replace":
                    setattr(row, name, wanted.system.get(name, False))
                elif name in wanted.system:
                    setattr(row, name, mode == "add")
            if mode == "replace":
                row.keywords = list(wanted.keywords)
            elif mode == "add":
                row.keywords = row.keywords + [k for k in wanted.keywords if k not in row.keywords]
            else:
                row.keywords = [k for k in row.keywords if k not in wanted.keywords]
            if (tuple(getattr(row, f) for f in _FIELDS), tuple(row.keywords)) != before:
                unseen_delta += int(was_seen) - int(row.seen)
                to_save.append(row)
        if not to_save:
            return FlagResult([], modified, folder.highestmodseq)
        _, modseq = bump_folder(folder.pk, unseen=unseen_delta)
        for row in to_save:
            row.modseq = modseq
        Message.objects.bulk_update(to_save, [*_FIELDS, "keywords", "modseq"], batch_size=500)
        publish_on_commit(ChangeEvent(folder.mailbox_id, folder.pk, modseq, "flags"))
    folder.highestmodseq = modseq
    return FlagResult([FlagChange(r.uid, r.flags, modseq) for r in to_save], modified, modseq)
