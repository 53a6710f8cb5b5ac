"""Commands of the selected state (RFC 3501 §6.4): CHECK, CLOSE, UNSELECT (RFC 3691), EXPUNGE
and UID EXPUNGE (RFC 4315), SEARCH (with MODSEQ, RFC 7162 §3.1.5; ESEARCH, RFC 4731; SAVE and
"$", SEARCHRES RFC 5182), SORT (RFC 5256, SORT=DISPLAY RFC 5957, ESORT RFC 5267), THREAD
(RFC 5256), FETCH (in :mod:`mailcore.protocols.imap.fetch`), STORE (UNCHANGEDSINCE, RFC 7162 §3.1.3), COPY and MOVE
(RFC 6851), each also as ``UID name`` (§6.4.8)."""

from __future__ import annotations

from mailcore import exceptions as exc
from mailcore.models import Folder
from mailcore.protocols.common.services import call_service
from mailcore.protocols.imap import parser as p
from mailcore.protocols.imap.commands import Reply, Session, format_uid_set
from mailcore.protocols.imap.fetch import run_fetch
from mailcore.protocols.imap.state import Selected
from mailcore.services import folders, imap_read
from mailcore.services import imap_keys as k
from mailcore.services import imap_search as search_service
from mailcore.services import imap_sort as sort_service


def _move_or_copy(mailbox, source: Folder, uids, name: str, move: bool):
    try:
        target = folders.get_folder(mailbox, name)
    except exc.FolderNotFound:
        raise Reply("NO", "[TRYCREATE] No such folder") from None
    if move:
        return target.uidvalidity, folders.move_messages(source, uids, target)
    return target.uidvalidity, folders.copy_messages(source, uids, target)


def _expunge(folder: Folder, uids):
    removed = folders.expunge(folder, uids)
    return removed, folder.highestmodseq if removed else None


def reported_part(found: list[int], returns: list[str], *, in_order: bool) -> list[int]:
    """The messages that MIN and MAX stand for when they are the only result options besides
    SAVE, else all found: what SAVE keeps (RFC 5182 §2.1: "the corresponding MIN/MAX is saved";
    with ALL or COUNT the full result) and whose MODSEQ is reported (RFC 7162 §3.1.5).
    ``in_order``: MIN and MAX are first and last in the given order (ESORT, RFC 5267 §3.1)."""
    others = set(returns) - {"SAVE"}
    if not found or not others or not others <= {"MIN", "MAX"}:
        return found
    first, last = (found[0], found[-1]) if in_order else (min(found), max(found))
    return [first] * ("MIN" in others) + [last] * ("MAX" in others)


def session_key(sel: Selected, key: k.SearchKey) -> k.SearchKey:
    """Turn session-relative keys (message numbers, \\Recent) into UID sets."""
    match key:
        case k.Seq(seqset) if seqset.saved:
            return k.Uids(sel.uid_ranges(sel.resolve(seqset, False)))  # "$", RFC 5182 §2.1
        case k.Seq(seqset):
            # A search key only selects: numbers past the last message match nothing (as in
            # Dovecot; imaptest's esearch script), where FETCH or STORE would be refused.
            n = sel.exists
            ranges = [(lo - 1, min(hi, n) - 1) for lo, hi in seqset.resolve(n) if lo <= n]
            return k.Uids(sel.uid_ranges(ranges))
        case k.Uid(seqset):
            return k.Uids(sel.uid_ranges(sel.resolve(seqset, True)))
        case k.Recent():
            return k.Uids(sel.recent_ranges())
        case k.New():
            return k.And((k.Uids(sel.recent_ranges()), k.Flag("seen", False)))
        case k.Old():
            return k.Not(k.Uids(sel.recent_ranges()))
        case k.And(keys):
            return k.And(tuple(session_key(sel, child) for child in keys))
        case k.Or(left, right):
            return k.Or(session_key(sel, left), session_key(sel, right))
        case k.Not(inner):
            return k.Not(session_key(sel, inner))
    return key


def esearch(cmd, numbers: list[int], returns: list[str], modseq: int | None, *,
            in_order: bool = False) -> str:
    """An ESEARCH response (RFC 4731 §3.1; ESORT, RFC 5267 §3.1, with ``in_order``): MIN, MAX
    and ALL are left out when nothing matched, COUNT never is."""
    parts = [f'* ESEARCH (TAG "{cmd.tag}")']
    if cmd.uid:
        parts.append("UID")
    if numbers:
        first, last = (numbers[0], numbers[-1]) if in_order else (min(numbers), max(numbers))
        if "MIN" in returns:
            parts.append(f"MIN {first}")
        if "MAX" in returns:
            parts.append(f"MAX {last}")
    if "COUNT" in returns:
        parts.append(f"COUNT {len(numbers)}")
    if "ALL" in returns and numbers:
        parts.append(f"ALL {format_uid_set(numbers if in_order else sorted(numbers))}")
    if modseq is not None:
        parts.append(f"MODSEQ {modseq}")  # RFC 7162 §3.1.5
    return " ".join(parts) + "\r\n"


def format_thread(root, number) -> str:
    """One thread of RFC 5256 §4: ``(1 2 3)`` for a chain, ``(1 (2)(3 4))`` where a message
    has several children, ``((1)(2))`` under a dummy. ``number`` maps a UID to its message
    number (None: UIDs). Iterative, for threads thousands deep."""
    out = ["("]
    stack: list = [")", root]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        parts: list = []
        if item.uid is not None:
            parts.append(str(item.uid if number is None else number(item.uid)))
        children = item.children
        if item.uid is not None and len(children) == 1:
            parts += [" ", children[0]]
        elif children:
            if item.uid is not None:
                parts.append(" ")
            for child in children:
                parts += ["(", child, ")"]
        stack.extend(reversed(parts))
    return "".join(out)


class SelectedState(Session):
    STATES = p.SELECTED

    async def cmd_CHECK(self, cmd: p.Bare) -> str:
        self.require_selected()
        await self.send_updates(allow_expunge=True, force=True)
        return "CHECK completed"

    async def cmd_CLOSE(self, cmd: p.Bare) -> str:
        sel = self.require_selected()
        if not sel.readonly:
            # §6.4.2: expunge silently, no untagged EXPUNGE responses.
            await call_service(folders.expunge, sel.folder)
        self.deselect()
        return "CLOSE completed"

    async def cmd_UNSELECT(self, cmd: p.Bare) -> str:
        self.require_selected()
        self.deselect()
        return "UNSELECT completed"

    async def cmd_EXPUNGE(self, cmd: p.Expunge) -> str:
        sel = self.require_writable()
        uids = None
        if cmd.set is not None:
            uids = sel.uid_ranges(sel.resolve(cmd.set, True))
            if not uids.ranges:
                return "EXPUNGE completed"
        removed, modseq = await call_service(_expunge, sel.folder, uids)
        sel.own_change(modseq)
        self.send_expunged(removed)
        sel.pending_expunged.difference_update(removed)
        if self.condstore:
            # RFC 7162 §3.2.7 (and §3.1.8 for CONDSTORE): the folder's mod-sequence after it.
            return f"[HIGHESTMODSEQ {max(sel.modseq, modseq or 0)}] EXPUNGE completed"
        return "EXPUNGE completed"

    async def cmd_SEARCH(self, cmd: p.Search) -> str:
        sel = self.require_selected()
        if self.utf8_accept and (cmd.charset is not None or cmd.bad_charset is not None):
            # RFC 6855 §3: after ENABLE UTF8=ACCEPT a SEARCH carries no charset; the server
            # SHOULD answer BAD (the labels conflict). A BAD leaves "$" as it was (RFC 5182).
            raise Reply("BAD", "No CHARSET after ENABLE UTF8=ACCEPT (RFC 6855)")
        key = session_key(sel, cmd.key)  # "$" is the result saved before this command
        save = cmd.returns is not None and "SAVE" in cmd.returns
        if save:
            # RFC 5182 §2.1: a SEARCH with SAVE that answers NO leaves "$" empty.
            sel.save([])
        if cmd.bad_charset is not None:
            raise Reply("NO", f"[BADCHARSET (UTF-8 US-ASCII)] {cmd.bad_charset}")
        found = await call_service(search_service.search, sel.folder.pk, key, list(sel.uids))
        if save:
            sel.save(reported_part(found, cmd.returns, in_order=False))
        if cmd.uid:
            numbers = found
        else:
            numbers = [seq for seq in map(sel.seq_of, found) if seq is not None]
        highest = None
        if k.uses_modseq(cmd.key):
            # RFC 7162 §3.1.5: the highest mod-sequence of the messages found, or of those
            # reported when only MIN and MAX are asked for (RFC 4731).
            self.enable_condstore()
            reported = found if cmd.returns is None else reported_part(
                found, cmd.returns, in_order=False)
            if reported:
                highest = await call_service(imap_read.max_modseq, sel.folder.pk, reported)
        returns = cmd.returns
        if returns is None and self.rev2:
            # RFC 9051 §6.4.4, §7.3.4: IMAP4rev2 answers every SEARCH with ESEARCH; no RETURN
            # means RETURN (ALL).
            returns = ["ALL"]
        if returns is not None:
            if returns != ["SAVE"]:  # RFC 5182 §2.1: SAVE alone has no ESEARCH answer
                self.send(esearch(cmd, numbers, returns, highest))
            return "SEARCH completed"
        modseq = f" (MODSEQ {highest})" if highest is not None else ""
        self.send("* SEARCH" + "".join(f" {n}" for n in numbers) + modseq + "\r\n")
        return "SEARCH completed"

    @staticmethod
    def _numbers(sel: Selected, uids: list[int], as_uids: bool) -> list[int]:
        if as_uids:
            return uids
        return [seq for seq in map(sel.seq_of, uids) if seq is not None]

    @staticmethod
    async def _found(sel: Selected, key: k.SearchKey) -> list[int]:
        if isinstance(key, k.All):
            return list(sel.uids)  # SORT and THREAD of a whole folder: nothing to search
        return await call_service(search_service.search, sel.folder.pk, session_key(sel, key),
                                  list(sel.uids))

    async def cmd_SORT(self, cmd: p.Sort) -> str:
        sel = self.require_selected()
        save = cmd.returns is not None and "SAVE" in cmd.returns
        key = cmd.key
        if save:
            # SEARCHRES with ESORT (RFC 5267 §3.1 result options, RFC 5182 §2.1 semantics).
            key = session_key(sel, key)
            sel.save([])
        found = await self._found(sel, key)
        ordered = await call_service(sort_service.sort_uids, sel.folder.pk, found, cmd.criteria)
        if save:
            sel.save(reported_part(ordered, cmd.returns, in_order=True))
        numbers = self._numbers(sel, ordered, cmd.uid)
        if cmd.returns is not None:
            # ESORT (RFC 5267 §3.1): MIN and MAX are the first and last in sort order.
            if cmd.returns != ["SAVE"]:
                self.send(esearch(cmd, numbers, cmd.returns, None, in_order=True))
        else:
            self.send("* SORT" + "".join(f" {n}" for n in numbers) + "\r\n")
        return "SORT completed"

    async def cmd_THREAD(self, cmd: p.Thread) -> str:
        sel = self.require_selected()
        found = await self._found(sel, cmd.key)
        threads = await call_service(sort_service.thread_uids, sel.folder.pk,
                                     sel.folder.uidvalidity, found, cmd.algorithm)
        number = None if cmd.uid else sel.seq_of
        self.send("* THREAD " + "".join(format_thread(t, number) for t in threads) + "\r\n")
        return "THREAD completed"

    async def cmd_STORE(self, cmd: p.Store) -> str:
        sel = self.require_writable()
        ranges = sel.resolve(cmd.set, cmd.uid)
        if not ranges:
            return "STORE completed"
        if cmd.unchangedsince is not None:
            self.enable_condstore()
        modseq, changed_uids, rows, modified = await call_service(
            imap_read.store_flags, sel.folder, sel.uid_ranges(ranges), cmd.flags, cmd.mode,
            not cmd.silent, cmd.unchangedsince,
        )
        sel.own_change(modseq)
        changed = set(changed_uids)
        skipped = set(modified)
        self.announce_keywords(row.keywords for row in rows)
        for row in rows:
            seq = sel.seq_of(row.uid)
            if seq is None or row.uid in skipped:
                continue
            if cmd.silent:
                # RFC 7162 §3.1.3: even .SILENT reports the new MODSEQ of what changed.
                if self.condstore and row.uid in changed:
                    self.send(f"* {seq} FETCH (UID {row.uid} MODSEQ ({row.modseq}))\r\n")
                continue
            uid = f" UID {row.uid}" if cmd.uid or self.condstore else ""
            extra = f" MODSEQ ({row.modseq})" if self.condstore else ""
            self.send(f"* {seq} FETCH (FLAGS {self.flags_text(row)}{uid}{extra})\r\n")
        if modified:
            numbers = modified if cmd.uid else sorted(
                n for n in map(sel.seq_of, modified) if n is not None)
            return f"[MODIFIED {format_uid_set(numbers)}] Conditional STORE failed"
        return "STORE completed"

    async def cmd_COPY(self, cmd: p.Copy) -> str:
        move = cmd.name == "MOVE"
        sel = self.require_writable() if move else self.require_selected()
        ranges = sel.resolve(cmd.set, cmd.uid)
        if not ranges:
            return f"{cmd.name} completed"
        uidvalidity, mapping = await call_service(
            _move_or_copy, self.mailbox, sel.folder, sel.uid_ranges(ranges), cmd.mailbox, move,
        )
        code = ""
        if mapping:
            code = (
                f"[COPYUID {uidvalidity} {format_uid_set(list(mapping))} "
                f"{format_uid_set(list(mapping.values()))}] "
            )
        if not move:
            return f"{code}COPY completed"
        # RFC 6851 §4.3: COPYUID in an untagged OK, then the EXPUNGEs, then the tagged OK.
        if code:
            self.send(f"* OK {code}Moved\r\n")
        self.send_expunged(list(mapping))  # VANISHED with QRESYNC (RFC 6851 §4.3, RFC 7162)
        return "MOVE completed"

    cmd_MOVE = cmd_COPY

    async def cmd_FETCH(self, cmd: p.Fetch) -> str:
        return await run_fetch(self, cmd)
