"""IMAP SEARCH keys (RFC 3501 §6.4.4, RFC 7162 §3.1.5) as typed values: the contract between
the IMAP parser, which builds them from the wire, the IMAP session, which turns the
session-relative ones (message numbers, \\Recent) into UID sets, and
:mod:`mailcore.services.imap_search`, which evaluates them.

Pure (no Django): the parser imports it. Every key is a frozen dataclass; a tree of keys is
built from :class:`And`, :class:`Or` and :class:`Not`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from mailcore.services.common import UidRanges

DateOp = Literal["before", "on", "since"]


@dataclass(frozen=True)
class All:
    """ALL: every message."""


@dataclass(frozen=True)
class And:
    keys: tuple[SearchKey, ...]


@dataclass(frozen=True)
class Or:
    left: SearchKey
    right: SearchKey


@dataclass(frozen=True)
class Not:
    key: SearchKey


@dataclass(frozen=True)
class Flag:
    """A system flag set (``value`` True) or not set: SEEN, UNSEEN, DELETED, ..."""

    field: str  # seen answered flagged deleted draft: the Message column
    value: bool


@dataclass(frozen=True)
class Keyword:
    """KEYWORD / UNKEYWORD."""

    name: str
    value: bool


@dataclass(frozen=True)
class Header:
    """FROM, TO, CC, BCC, SUBJECT, HEADER name text: case-insensitive substring."""

    name: str  # lower case
    text: str


@dataclass(frozen=True)
class Body:
    """BODY text."""

    text: str


@dataclass(frozen=True)
class Text:
    """TEXT text: header and body."""

    text: str


@dataclass(frozen=True)
class DateKey:
    """BEFORE/ON/SINCE (``internal``) and SENTBEFORE/SENTON/SENTSINCE (``sent``)."""

    which: Literal["internal", "sent"]
    op: DateOp
    day: date


@dataclass(frozen=True)
class Larger:
    size: int


@dataclass(frozen=True)
class Smaller:
    size: int


@dataclass(frozen=True)
class ModSeq:
    """MODSEQ n (RFC 7162 §3.1.5): changed at or after mod-sequence n."""

    modseq: int


# Session-relative keys, as parsed: the session turns them into Uids before searching.


@dataclass(frozen=True)
class Seq:
    """A message sequence set (a lexer ``SequenceSet``)."""

    set: Any


@dataclass(frozen=True)
class Uid:
    """UID sequence-set (a lexer ``SequenceSet``)."""

    set: Any


@dataclass(frozen=True)
class Recent:
    """RECENT: \\Recent is per session (RFC 3501 §2.3.2)."""


@dataclass(frozen=True)
class New:
    """NEW: recent and not seen."""


@dataclass(frozen=True)
class Old:
    """OLD: not recent."""


# What the search service receives in place of the session-relative keys.


@dataclass(frozen=True)
class Age:
    """YOUNGER/OLDER n (WITHIN, RFC 5032): internal date within, or beyond, n seconds."""

    seconds: int
    younger: bool


@dataclass(frozen=True)
class Uids:
    ranges: UidRanges


SearchKey = (
    All | And | Or | Not | Flag | Keyword | Header | Body | Text | DateKey | Larger | Smaller
    | ModSeq | Seq | Uid | Recent | New | Old | Uids | Age
)


def uses_modseq(key: SearchKey) -> bool:
    """Whether a MODSEQ key appears anywhere in the tree (RFC 7162 §3.1.5)."""
    if isinstance(key, ModSeq):
        return True
    if isinstance(key, And):
        return any(uses_modseq(child) for child in key.keys)
    if isinstance(key, Or):
        return uses_modseq(key.left) or uses_modseq(key.right)
    if isinstance(key, Not):
        return uses_modseq(key.key)
    return False
