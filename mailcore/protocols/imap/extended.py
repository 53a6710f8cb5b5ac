"""Arguments of commands beyond RFC 3501's grammar: for the searching commands CHARSET, the
RETURN options of ESEARCH (RFC 4731 §3.1), ESORT (RFC 5267 §3.1) and SEARCHRES (RFC 5182 §2),
SORT criteria (RFC 5256 §3, SORT=DISPLAY RFC 5957 §3) and THREAD algorithms (RFC 5256 §3);
the extended LIST of LIST-EXTENDED (RFC 5258 §3, §6), LIST-STATUS (RFC 5819 §2) and
SPECIAL-USE (RFC 6154 §6); CREATE's USE parameter (CREATE-SPECIAL-USE, RFC 6154 §3). Pure (no
I/O, no Django); used by :mod:`parser`."""

from __future__ import annotations

from dataclasses import dataclass

from mailcore.protocols.imap.arguments import search_key
from mailcore.protocols.imap.lexer import BadCharset, ParseError, Reader
from mailcore.services import imap_keys as k

_CHARSETS = ("UTF-8", "US-ASCII", "UTF8")
# RFC 4731 §3.1 (ESEARCH) and RFC 5267 §3.1 (ESORT) result options, and SAVE (RFC 5182 §2).
_RETURN_OPTIONS = ("MIN", "MAX", "COUNT", "ALL", "SAVE")
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
    list asks for ALL; SAVE alone asks for no ESEARCH response (RFC 5182 §2.1)."""
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


# --- LIST (RFC 5258, RFC 5819, RFC 6154) -------------------------------------------------------

# RFC 5258 §6: list-select-base-opt "SUBSCRIBED", list-select-independent-opt "REMOTE" (and
# "SPECIAL-USE", RFC 6154 §6), list-select-mod-opt "RECURSIVEMATCH".
_SELECT_BASE = frozenset({"SUBSCRIBED"})
_SELECT_OPTIONS = _SELECT_BASE | {"REMOTE", "SPECIAL-USE", "RECURSIVEMATCH"}
_LIST_RETURNS = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"})
# STATUS items (RFC 3501 §6.3.10, CONDSTORE RFC 7162 §3.1.6, STATUS=SIZE RFC 8438, QUOTA
# RFC 9208 §4.2), for LIST-STATUS (RFC 5819 §2) as for STATUS.
STATUS_ITEMS = frozenset({"MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN",
                          "HIGHESTMODSEQ", "SIZE", "DELETED", "DELETED-STORAGE"})
# A LIST with more patterns than this is not a real client's: refused before any matching, so
# a line of thousands of patterns cannot make one LIST cost patterns x folders on the loop.
MAX_LIST_PATTERNS = 100


@dataclass(frozen=True)
class ListArguments:
    """What a LIST asks for. ``extended`` says the RFC 5258 syntax was used (options or a
    pattern list): only then are attributes limited to what the return options ask for."""

    reference: str
    patterns: tuple[str, ...]
    select: frozenset[str]
    returns: frozenset[str]
    status: tuple[str, ...] | None  # LIST-STATUS items, RETURN (STATUS (...))
    extended: bool


def list_arguments(r: Reader, extended_allowed: bool) -> ListArguments:
    """``[SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]`` after the
    command name (RFC 5258 §6); LSUB takes only ``SP mailbox SP list-mailbox``. Unknown
    options, RECURSIVEMATCH without a base option (§3.1: "MUST return BAD") and an empty
    pattern list are parse errors."""
    r.sp()
    extended = False
    select: frozenset[str] = frozenset()
    if extended_allowed and r.peek() == b"(":
        extended = True
        select = frozenset(_options(r, _SELECT_OPTIONS, "selection"))
        if "RECURSIVEMATCH" in select and not select & _SELECT_BASE:
            raise ParseError("RECURSIVEMATCH needs SUBSCRIBED (RFC 5258 3.1)")
        r.sp()
    reference = r.list_mailbox() if r.peek() != b'"' else r.mailbox_name(r.string())
    r.sp()
    if extended_allowed and r.peek() == b"(":
        extended = True
        r.open_paren()
        patterns = [r.list_mailbox()]
        while r.maybe(b" "):
            if len(patterns) >= MAX_LIST_PATTERNS:
                raise ParseError(f"at most {MAX_LIST_PATTERNS} patterns in one LIST")
            patterns.append(r.list_mailbox())
        r.close_paren()
    else:
        patterns = [r.list_mailbox()]
    returns: set[str] = set()
    status = None
    if extended_allowed and r.maybe(b" "):
        extended = True
        if not r.maybe_ci(b"RETURN"):
            raise ParseError("expected RETURN")
        r.sp()
        r.open_paren()
        while r.peek() != b")":
            if returns:
                r.sp()
            option = r.atom().upper()
            if option not in _LIST_RETURNS:
                raise ParseError(f"unknown LIST return option {option}")
            if option == "STATUS":
                if status is not None:
                    raise ParseError("STATUS given twice")
                r.sp()
                status = tuple(dict.fromkeys(_options(r, STATUS_ITEMS, "STATUS")))
                if not status:
                    raise ParseError("STATUS needs at least one item")
            returns.add(option)
        r.close_paren()
    if "SUBSCRIBED" in select:
        returns.add("SUBSCRIBED")  # RFC 5258 §3.1: the selection option implies the return one
    return ListArguments(reference, tuple(patterns), select, frozenset(returns), status,
                         extended)


def _options(r: Reader, known: frozenset[str], what: str) -> list[str]:
    """``"(" [atom *(SP atom)] ")"``, each a known option (upper-cased)."""
    r.open_paren()
    options: list[str] = []
    while r.peek() != b")":
        if options:
            r.sp()
        option = r.atom().upper()
        if option not in known:
            raise ParseError(f"unknown {what} option {option}")
        options.append(option)
    r.close_paren()
    return options


def create_uses(r: Reader) -> tuple[str, ...]:
    """create-params (RFC 4466 §2.2) holding only ``USE (use-attr ...)`` (RFC 6154 §6); the
    special uses asked for, as written. Any other parameter is unknown: BAD."""
    r.open_paren()
    uses: list[str] = []
    while True:
        name = r.atom().upper()
        if name != "USE":
            raise ParseError(f"unknown CREATE parameter {name}")
        r.sp()
        uses.extend(r.flag_list())
        if not r.maybe(b" "):
            break
    r.close_paren()
    return tuple(uses)
