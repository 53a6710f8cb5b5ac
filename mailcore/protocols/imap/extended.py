"""Arguments of the searching commands beyond RFC 3501's SEARCH: CHARSET, the RETURN options of
ESEARCH (RFC 4731 §3.1) and ESORT (RFC 5267 §3.1), SORT criteria (RFC 5256 §3, SORT=DISPLAY
RFC 5957 §3) and THREAD algorithms (RFC 5256 §3). Pure (no I/O, no Django); used by
:mod:`parser`."""

from __future__ import annotations

from mailcore.protocols.imap.arguments import search_key
from mailcore.protocols.imap.lexer import BadCharset, ParseError, Reader
from mailcore.services import imap_keys as k

_CHARSETS = ("UTF-8", "US-ASCII", "UTF8")
# RFC 4731 §3.1 (ESEARCH) and RFC 5267 §3.1 (ESORT) result options.
_RETURN_OPTIONS = ("MIN", "MAX", "COUNT", "ALL")
SORT_KEYS = ("ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO",
             "DISPLAYFROM", "DISPLAYTO")  # RFC 5256 §3, RFC 5957 §3
THREAD_ALGORITHMS = ("ORDEREDSUBJECT", "REFERENCES")  # RFC 5256 §3


def read_charset(r: Reader) -> str:
    charset = r.astring().decode("ascii", "replace").upper()
    if charset not in _CHARSETS:
        raise BadCharset(f"charset {charset} is not supported")
    return charset


def search_keys(r: Reader) -> k.SearchKey:
    keys = [search_key(r)]
    while r.maybe(b" "):
        keys.append(search_key(r))
    return keys[0] if len(keys) == 1 else k.And(tuple(keys))


def return_options(r: Reader) -> list[str] | None:
    """``RETURN (options)`` (RFC 4731 §3.1, RFC 5267 §3.1), or None when absent. An empty
    list asks for ALL."""
    if not r.maybe_ci(b"RETURN"):
        return None
    r.sp()
    options = [word.upper() for word in r.atom_list()]
    for option in options:
        if option not in _RETURN_OPTIONS:
            raise ParseError(f"unknown RETURN option {option}")
    r.sp()
    return list(dict.fromkeys(options)) or ["ALL"]


def sort_criteria(r: Reader) -> list[tuple[str, bool]]:
    """``(sort-criterion ...)``: ``(key, reverse)`` pairs, the most significant first."""
    r.open_paren()
    criteria = []
    while True:
        reverse = r.maybe_ci(b"REVERSE")
        if reverse:
            r.sp()
        word = r.atom().upper()
        if word not in SORT_KEYS:
            raise ParseError(f"unknown sort key {word}")
        criteria.append((word, reverse))
        if not r.maybe(b" "):
            break
    r.close_paren()
    return criteria


def thread_algorithm(r: Reader) -> str:
    algorithm = r.atom().upper()
    if algorithm not in THREAD_ALGORITHMS:
        raise ParseError(f"unknown threading algorithm {algorithm}")
    return algorithm
