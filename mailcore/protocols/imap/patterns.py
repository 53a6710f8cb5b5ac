"""LIST/LSUB mailbox patterns (RFC 3501 §6.3.8): ``*`` matches any characters, ``%`` any but
the hierarchy delimiter ``/``; INBOX is case-insensitive (§5.1), and so is the ``INBOX/``
prefix of its children.

Matched in time linear in the name, never by a backtracking regular expression (a pattern of
38 ``*`` used to take seconds on the event loop, issue 12): runs of wildcards are collapsed
(any run holding a ``*`` is one ``*``, ``%%`` is ``%``), patterns are capped in length, and
a pattern without ``%`` is matched segment by segment (prefix, suffix, and the leftmost
occurrence of each middle segment, which is optimal for ``*``) with ``str`` methods; any other
pattern runs as a bit-parallel NFA (shift-and, as agrep does): the set of pattern positions
reached is one integer, so each character of a name costs a few integer operations whatever
the pattern. Pure (no I/O, no Django).
"""

from __future__ import annotations

# Folder names are at most a few hundred characters (services.folders); reference + pattern
# longer than this is not a real client's, and is refused before any matching.
MAX_PATTERN = 1024
DELIMITER = "/"


class PatternTooLong(ValueError):
    """The pattern exceeds MAX_PATTERN characters (the reply is NO [LIMIT])."""


def collapse(pattern: str) -> str:
    """The pattern with each run of wildcards made one: ``*`` if the run holds a ``*`` (it then
    matches anything), else ``%``."""
    out: list[str] = []
    run = ""
    for ch in pattern:
        if ch in "*%":
            run += ch if ch not in run else ""
            continue
        if run:
            out.append("*" if "*" in run else "%")
            run = ""
        out.append(ch)
    if run:
        out.append("*" if "*" in run else "%")
    return "".join(out)


class Pattern:
    """A compiled LIST pattern; :meth:`matches` answers for one folder name."""

    __slots__ = ("tokens", "accept", "literal", "star", "percent", "wild", "segments")

    def __init__(self, pattern: str):
        if len(pattern) > MAX_PATTERN:
            raise PatternTooLong(f"pattern longer than {MAX_PATTERN} characters")
        self.tokens = collapse(pattern)
        self.accept = 1 << len(self.tokens)
        # Bit i is set when token i is ... (state i: the first i tokens are matched).
        self.literal: dict[str, int] = {}
        self.star = 0
        self.percent = 0
        for i, token in enumerate(self.tokens):
            bit = 1 << i
            if token == "*":
                self.star |= bit
            elif token == "%":
                self.percent |= bit
            else:
                self.literal[token] = self.literal.get(token, 0) | bit
        self.wild = self.star | self.percent
        # Without %, the literal segments between the stars.
        self.segments = None if self.percent else self.tokens.split("*")

    def _closure(self, states: int) -> int:
        # A wildcard may match nothing: state i reaches i+1. Collapsed runs mean a wildcard is
        # never followed by another, so one step is the whole closure.
        return states | ((states & self.wild) << 1)

    def _run(self, name: str) -> bool:
        if self.segments is not None:
            return _match_segments(self.segments, name)
        states = self._closure(1)
        literal = self.literal
        star, percent = self.star, self.percent
        for ch in name:
            loops = star if ch == DELIMITER else star | percent
            states = ((states & literal.get(ch, 0)) << 1) | (states & loops)
            if not states:
                return False
            states = self._closure(states)
        return bool(states & self.accept)

    def matches(self, name: str) -> bool:
        if self._run(name):
            return True
        if name == "INBOX" or name.startswith("INBOX/"):
            return self._run(name.lower()) or self._run(name.upper())
        return False


def _match_segments(segments: list[str], name: str) -> bool:
    """``*``-only glob: ``segments`` are the pattern split on ``*``."""
    if len(segments) == 1:
        return name == segments[0]
    first, *middle, last = segments
    if len(name) < len(first) + len(last) or not name.startswith(first):
        return False
    if not name.endswith(last):
        return False
    pos, end = len(first), len(name) - len(last)
    for segment in middle:
        found = name.find(segment, pos, end)
        if found < 0:
            return False
        pos = found + len(segment)
    return True
