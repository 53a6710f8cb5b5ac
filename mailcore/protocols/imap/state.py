"""IMAP session state (RFC 3501 §3): the selected folder as this session sees it. The
connection states and which commands each allows are declared with the commands, in
:mod:`mailcore.protocols.imap.parser` (``State`` is re-exported here).

Sequence numbers are session state, not stored: they are positions in the sorted UID list the
session keeps (§2.3.1.2), which changes only when the session is told of new or expunged
messages (§7.4.1). \\Recent is per session too (§2.3.2): the first session of this process to
learn of a message gets it.
"""

from __future__ import annotations

import threading
from array import array
from bisect import bisect_left, bisect_right

from mailcore.protocols.imap.lexer import SequenceSet
from mailcore.protocols.imap.parser import State
from mailcore.services.common import UidRanges

__all__ = ["BadSequence", "Selected", "State", "claim_recent"]


class BadSequence(Exception):
    """A sequence number beyond the messages the session knows (answered with BAD)."""


# Folder id -> highest UID some session of this process has been told about (\Recent claims).
_recent_lock = threading.Lock()
_recent_claims: dict[int, int] = {}


def claim_recent(folder_id: int, up_to_uid: int) -> int:
    """Claim \\Recent for the UIDs up to ``up_to_uid`` not yet claimed; return the previous
    claim (the session's recent UIDs are those above it). A folder never seen by this process
    starts at 0: §2.3.2 asks to count a message as recent when in doubt."""
    with _recent_lock:
        previous = _recent_claims.get(folder_id, 0)
        if up_to_uid > previous:
            _recent_claims[folder_id] = up_to_uid
        return previous


class Selected:
    """The selected folder as this session knows it."""

    __slots__ = (
        "folder", "readonly", "uids", "modseq", "own_modseqs", "recent", "pending_expunged",
        "dirty", "event_modseq", "keywords", "saved",
    )

    def __init__(self, folder, readonly: bool, uids: array):
        self.folder = folder
        self.readonly = readonly
        self.uids = uids
        self.modseq = folder.highestmodseq
        self.own_modseqs: set[int] = set()
        self.recent: list[tuple[int, int]] = []
        self.pending_expunged: set[int] = set()
        self.dirty = False  # something changed that the mod-sequence alone does not say
        self.event_modseq = 0  # the highest mod-sequence change events announced
        # The keywords announced to the client in FLAGS, in order (stored as written: the store
        # keeps keywords case-sensitively, so each spelling is announced).
        self.keywords: dict[str, str] = {}
        # SEARCHRES (RFC 5182 §2.1): the saved search result, as UID ranges of messages this
        # session knows. A new Selected per SELECT/EXAMINE is the reset to the empty set; an
        # expunged message drops out because ``resolve`` looks each range up in ``uids``.
        self.saved = UidRanges(())

    @property
    def stale(self) -> bool:
        """Whether the store may hold changes this session has not seen."""
        return self.dirty or self.event_modseq > self.modseq

    def own_change(self, modseq: int | None) -> bool:
        """Note a change this session made and reported itself. When it directly follows what
        the session knew (nobody changed the folder in between), the session is up to date
        without asking the store; returns whether that was the case."""
        if modseq is None:
            return True
        if modseq == self.modseq + 1:
            self.modseq = modseq
            return True
        self.own_modseqs.add(modseq)
        return False

    @property
    def exists(self) -> int:
        return len(self.uids)

    def add_recent(self, lo: int, hi: int) -> None:
        if lo <= hi:
            self.recent.append((lo, hi))

    def is_recent(self, uid: int) -> bool:
        return any(lo <= uid <= hi for lo, hi in self.recent)

    def recent_count(self) -> int:
        uids = self.uids
        return sum(bisect_right(uids, hi) - bisect_left(uids, lo) for lo, hi in self.recent)

    def recent_ranges(self) -> UidRanges:
        return UidRanges(tuple(self.recent))

    def seq_of(self, uid: int) -> int | None:
        i = bisect_left(self.uids, uid)
        if i < len(self.uids) and self.uids[i] == uid:
            return i + 1
        return None

    def resolve(self, seqset: SequenceSet, uid_mode: bool) -> list[tuple[int, int]]:
        """Inclusive index ranges (0-based positions) the set names, sorted and merged.

        UID sets ignore UIDs that do not exist (§6.4.8), and ``n:*`` always includes the last
        message. Message-number sets beyond the known count are an error. Never allocates per
        number of the set: ``1:4294967295`` is one pair.

        ``$`` (RFC 5182) names the saved messages in both modes: their UIDs in a UID command,
        their message numbers otherwise; empty before any SAVE (§2.1)."""
        uids = self.uids
        n = len(uids)
        if n == 0:
            return []
        out: list[tuple[int, int]] = []
        if seqset.saved:
            for lo, hi in self.saved.ranges:
                i0 = bisect_left(uids, lo)
                i1 = bisect_right(uids, hi) - 1
                if i0 <= i1:
                    out.append((i0, i1))
        elif uid_mode:
            for lo, hi in seqset.resolve(uids[-1]):
                i0 = bisect_left(uids, lo)
                i1 = bisect_right(uids, hi) - 1
                if i0 <= i1:
                    out.append((i0, i1))
        else:
            if seqset.explicit_max > n:
                raise BadSequence(f"no message {seqset.explicit_max}: {n} messages")
            out = [(lo - 1, hi - 1) for lo, hi in seqset.resolve(n)]
        merged: list[tuple[int, int]] = []
        for lo, hi in out:
            if merged and lo <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
            else:
                merged.append((lo, hi))
        return merged

    def save(self, found: list[int]) -> None:
        """Keep a search result as ``$`` (RFC 5182 §2.1): the UIDs, in any order, as runs of
        consecutive known messages (a folder's whole ``SEARCH ALL`` is one pair)."""
        uids = self.uids
        known = sorted(i for i, uid in ((bisect_left(uids, uid), uid) for uid in set(found))
                       if i < len(uids) and uids[i] == uid)
        runs: list[tuple[int, int]] = []
        for i in known:
            if runs and i == runs[-1][1] + 1:
                runs[-1] = (runs[-1][0], i)
            else:
                runs.append((i, i))
        self.saved = self.uid_ranges(runs)

    def uid_ranges(self, index_ranges: list[tuple[int, int]]) -> UidRanges:
        """The UIDs at the index ranges, as UID ranges: between two known UIDs the store holds
        no UID the session does not know (UIDs only grow), so each run is one range."""
        uids = self.uids
        return UidRanges(tuple((uids[i0], uids[i1]) for i0, i1 in index_ranges))

    def count(self, index_ranges: list[tuple[int, int]]) -> int:
        return sum(i1 - i0 + 1 for i0, i1 in index_ranges)

    def remove(self, uid: int) -> int | None:
        """Forget an expunged UID; return its former sequence number."""
        seq = self.seq_of(uid)
        if seq is not None:
            del self.uids[seq - 1]
        return seq
