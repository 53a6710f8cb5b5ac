"""Comparators and match types (RFC 5228 §2.7; relational, RFC 5231; match variables,
RFC 5229 §3.2).

``:matches`` is implemented without backtracking: the pattern is split at its ``*``s into
segments of literal characters and ``?``s; the first segment must match at the start, the last
at the end, and each middle one is placed at its leftmost position, which is both correct (an
earlier placement never hurts later segments) and gives each ``*`` the shortest text, as
RFC 5229 §3.2 asks. Cost: O(len(value) x len(pattern)) at worst. No Django."""

from __future__ import annotations

from dataclasses import dataclass

MAX_MATCH_VARIABLES = 10  # ${0}..${9}, RFC 5229 §3.2 requires at least that many


def fold(value: str, comparator: str) -> str:
    """The form a comparator compares (i;ascii-casemap folds ASCII letters only, RFC 4790)."""
    if comparator == "i;ascii-casemap":
        return value.translate(_ASCII_LOWER)
    return value


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def numeric(value: str) -> int | None:
    """i;ascii-numeric (RFC 4790 §9.1): the leading digits as a number; None (positive
    infinity) when the value does not start with a digit."""
    end = 0
    while end < len(value) and "0" <= value[end] <= "9":
        end += 1
    return int(value[:end]) if end else None


def _numeric_order(a: str, b: str) -> int:
    x, y = numeric(a), numeric(b)
    if x == y:
        return 0
    if x is None:
        return 1
    if y is None:
        return -1
    return -1 if x < y else 1


def relation_holds(relation: str, order: int) -> bool:
    return {"gt": order > 0, "ge": order >= 0, "lt": order < 0, "le": order <= 0,
            "eq": order == 0, "ne": order != 0}[relation]


def compare(a: str, b: str, comparator: str) -> int:
    """Ordering of a and b under the comparator (RFC 5231 §4)."""
    if comparator == "i;ascii-numeric":
        return _numeric_order(a, b)
    a, b = fold(a, comparator), fold(b, comparator)
    return (a > b) - (a < b)


@dataclass
class MatchSpec:
    kind: str  # "is", "contains", "matches", "count", "value"
    comparator: str = "i;ascii-casemap"
    relation: str = ""

    @classmethod
    def from_tags(cls, tags: dict) -> MatchSpec:
        comparator = str(tags.get(":comparator", "i;ascii-casemap"))
        for kind in ("is", "contains", "matches", "count", "value"):
            tag = tags.get(f":{kind}")
            if tag is not None:
                relation = str(tag).lower() if kind in ("count", "value") else ""
                return cls(kind, comparator, relation)
        return cls("is", comparator)


def match_values(spec: MatchSpec, values: list[str], keys: list[str]) -> tuple[bool, list[str]]:
    """Does any value match any key? Returns (matched, match variables of the first match:
    ``${0}`` the whole value and one per wildcard, for ``:matches``)."""
    if spec.kind == "count":
        # RFC 5231 §4.1: the number of values, compared as i;ascii-numeric by the comparator.
        count = str(len(values))
        return any(relation_holds(spec.relation, compare(count, key, spec.comparator))
                   for key in keys), []
    for value in values:
        folded = fold(value, spec.comparator)
        for key in keys:
            if spec.kind == "value":
                if relation_holds(spec.relation, compare(value, key, spec.comparator)):
                    return True, []
            elif spec.kind == "is":
                if spec.comparator == "i;ascii-numeric":
                    if _numeric_order(value, key) == 0:
                        return True, []
                elif folded == fold(key, spec.comparator):
                    return True, []
            elif spec.kind == "contains":
                if fold(key, spec.comparator) in folded:
                    return True, []
            else:
                captures = glob(fold(key, spec.comparator), folded)
                if captures is not None:
                    # Captures come from the folded text; give the original characters back.
                    return True, _originals(value, key, spec.comparator, captures)
    return False, []


def _originals(value: str, key: str, comparator: str, captures: list[tuple[int, int]]):
    return [value] + [value[start:end] for start, end in captures][: MAX_MATCH_VARIABLES - 1]


def _compile_glob(pattern: str) -> list[list[str | None]]:
    """Segments between ``*``; in each, a literal character or None for ``?``. A backslash
    quotes the next character (RFC 5228 §2.7.1)."""
    segments: list[list[str | None]] = [[]]
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            segments[-1].append(pattern[i + 1])
            i += 2
            continue
        if c == "*":
            segments.append([])
        else:
            segments[-1].append(None if c == "?" else c)
        i += 1
    return segments


def _fits(segment: list[str | None], value: str, at: int) -> bool:
    if at + len(segment) > len(value):
        return False
    for offset, char in enumerate(segment):
        if char is not None and value[at + offset] != char:
            return False
    return True


def _find(segment: list[str | None], value: str, start: int, stop: int) -> int:
    if None not in segment:
        return value.find("".join(segment), start, stop)  # type: ignore[arg-type]
    for at in range(start, stop - len(segment) + 1):
        if _fits(segment, value, at):
            return at
    return -1


def glob(pattern: str, value: str) -> list[tuple[int, int]] | None:
    """Spans of ``value`` each wildcard (``*`` or ``?``, in order) matched, or None."""
    segments = _compile_glob(pattern)
    spans: list[tuple[int, int]] = []
    first = segments[0]
    if len(segments) == 1:
        if len(first) != len(value) or not _fits(first, value, 0):
            return None
        return [(i, i + 1) for i, c in enumerate(first) if c is None]
    last = segments[-1]
    tail_start = len(value) - len(last)
    if tail_start < len(first) or not _fits(first, value, 0) or not _fits(last, value,
                                                                           tail_start):
        return None
    spans.extend((i, i + 1) for i, c in enumerate(first) if c is None)
    position = len(first)
    for segment in segments[1:-1]:
        at = _find(segment, value, position, tail_start)
        if at < 0:
            return None
        spans.append((position, at))  # the '*' before this segment: as short as possible
        spans.extend((at + i, at + i + 1) for i, c in enumerate(segment) if c is None)
        position = at + len(segment)
    spans.append((position, tail_start))
    spans.extend((tail_start + i, tail_start + i + 1) for i, c in enumerate(last) if c is None)
    return spans
