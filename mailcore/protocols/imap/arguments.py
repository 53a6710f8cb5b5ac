"""The argument grammars of IMAP larger than a few tokens: search keys (RFC 3501 §6.4.4,
RFC 7162 §3.1.5) as the typed keys of :mod:`mailcore.services.imap_keys`, fetch attributes
with sections and partials (§6.4.5; BINARY, RFC 3516 §4.2) as
:class:`~mailcore.protocols.imap.lexer.FetchAtt`, SELECT's parameters (CONDSTORE, QRESYNC) and
ID's. Pure (no I/O, no Django); used by :mod:`parser`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailcore.protocols.imap.lexer import (
    MAX_DEPTH,
    FetchAtt,
    ParseError,
    Reader,
    Section,
    SequenceSet,
)
from mailcore.services import imap_keys as k

# --- search keys (§6.4.4) ----------------------------------------------------------------------

_WORD_KEYS: dict[str, k.SearchKey] = {
    "ANSWERED": k.Flag("answered", True),
    "DELETED": k.Flag("deleted", True),
    "DRAFT": k.Flag("draft", True),
    "FLAGGED": k.Flag("flagged", True),
    "SEEN": k.Flag("seen", True),
    "UNANSWERED": k.Flag("answered", False),
    "UNDELETED": k.Flag("deleted", False),
    "UNDRAFT": k.Flag("draft", False),
    "UNFLAGGED": k.Flag("flagged", False),
    "UNSEEN": k.Flag("seen", False),
    "ALL": k.All(),
    "NEW": k.New(),
    "OLD": k.Old(),
    "RECENT": k.Recent(),
}
_HEADER_KEYS = {"BCC": "bcc", "CC": "cc", "FROM": "from", "SUBJECT": "subject", "TO": "to"}
_DATE_KEYS = {
    "BEFORE": ("internal", "before"),
    "ON": ("internal", "on"),
    "SINCE": ("internal", "since"),
    "SENTBEFORE": ("sent", "before"),
    "SENTON": ("sent", "on"),
    "SENTSINCE": ("sent", "since"),
}


def _search_text(r: Reader) -> str:
    return r.astring().decode("utf-8", "replace")


def _nested(r: Reader) -> None:
    r.depth += 1
    if r.depth > MAX_DEPTH:
        raise ParseError("search keys too deeply nested")


def search_key(r: Reader) -> k.SearchKey:
    """One search key of RFC 3501 §6.4.4."""
    c = r.peek()
    if c == b"(":
        r.open_paren()
        keys = [search_key(r)]
        while r.maybe(b" "):
            keys.append(search_key(r))
        r.close_paren()
        return keys[0] if len(keys) == 1 else k.And(tuple(keys))
    if c and (c.isdigit() or c in (b"*", b"$")):
        return k.Seq(r.sequence_set())  # "$": the saved result (RFC 5182 §2.1)
    word = r.atom().upper()
    if word in _WORD_KEYS:
        return _WORD_KEYS[word]
    if word in _HEADER_KEYS:
        r.sp()
        return k.Header(_HEADER_KEYS[word], _search_text(r))
    if word in _DATE_KEYS:
        r.sp()
        which, op = _DATE_KEYS[word]
        return k.DateKey(which, op, r.date())
    if word == "BODY":
        r.sp()
        return k.Body(_search_text(r))
    if word == "TEXT":
        r.sp()
        return k.Text(_search_text(r))
    if word in ("KEYWORD", "UNKEYWORD"):
        r.sp()
        return k.Keyword(r.flag(), word == "KEYWORD")
    if word == "HEADER":
        r.sp()
        name = r.astring().decode("ascii", "replace").lower()
        r.sp()
        return k.Header(name, _search_text(r))
    if word == "LARGER":
        r.sp()
        return k.Larger(r.number())
    if word == "SMALLER":
        r.sp()
        return k.Smaller(r.number())
    if word in ("YOUNGER", "OLDER"):
        r.sp()
        return k.Age(r.number(), word == "YOUNGER")  # WITHIN, RFC 5032 §3
    if word == "UID":
        r.sp()
        return k.Uid(r.sequence_set())
    if word == "MODSEQ":
        # RFC 7162 §3.1.5: MODSEQ [entry-name entry-type-req] mod-sequence-valzer; per-flag
        # mod-sequences are not kept, so every entry means the message's own.
        r.sp()
        if r.peek() == b'"':
            r.string()
            r.sp()
            if r.atom().lower() not in ("priv", "shared", "all"):
                raise ParseError("MODSEQ entry type is priv, shared or all")
            r.sp()
        return k.ModSeq(r.modseq())
    if word == "NOT":
        r.sp()
        _nested(r)
        key = search_key(r)
        r.depth -= 1
        return k.Not(key)
    if word == "OR":
        r.sp()
        _nested(r)
        left = search_key(r)
        r.sp()
        right = search_key(r)
        r.depth -= 1
        return k.Or(left, right)
    raise ParseError(f"unknown search key {word}")


# --- fetch attributes (§6.4.5) -----------------------------------------------------------------

_FETCH_SIMPLE = frozenset(
    "UID FLAGS ENVELOPE INTERNALDATE RFC822.SIZE RFC822 RFC822.HEADER RFC822.TEXT "
    "BODYSTRUCTURE MODSEQ".split()
)
_MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
_FETCH_WORD = re.compile(rb"[A-Za-z0-9.]+")
_SECTION_WORD = re.compile(rb"[A-Za-z.]+")


def fetch_atts(r: Reader) -> list[FetchAtt]:
    if r.peek() == b"(":
        r.open_paren()
        atts = [_fetch_att(r)]
        while r.maybe(b" "):
            atts.append(_fetch_att(r))
        r.close_paren()
        return atts
    save = r.pos
    word = r.regex(_FETCH_WORD, "a fetch attribute").decode().upper()
    if word in _MACROS and r.peek() != b"[":
        return [FetchAtt(name) for name in _MACROS[word]]
    r.pos = save
    return [_fetch_att(r)]


def _fetch_att(r: Reader) -> FetchAtt:
    word = r.regex(_FETCH_WORD, "a fetch attribute").decode().upper()
    if word in ("BODY", "BODY.PEEK") and r.peek() == b"[":
        section = _section(r)
        partial = None
        if r.maybe(b"<"):
            start = r.number()
            r.expect(b".")
            length = r.number(nonzero=True)
            r.expect(b">")
            partial = (start, length)
        return FetchAtt("BODY[]", section, partial, word == "BODY.PEEK")
    if word in _FETCH_SIMPLE or word == "BODY":
        return FetchAtt(word)
    if word in ("BINARY", "BINARY.PEEK", "BINARY.SIZE"):
        return _binary_att(r, word)
    raise ParseError(f"unknown fetch attribute {word}")


def _binary_att(r: Reader, word: str) -> FetchAtt:
    """RFC 3516 §7: "BINARY" [".PEEK"] section-binary [partial] / "BINARY.SIZE" section-binary,
    where section-binary = "[" [section-part] "]": part numbers only, no HEADER, TEXT or MIME.
    BINARY.SIZE does not set \\Seen, so it is a peek."""
    r.expect(b"[", "[ after " + word)
    parts: list[int] = []
    if r.peek() != b"]":
        parts.append(r.number(nonzero=True))
        while r.maybe(b"."):
            parts.append(r.number(nonzero=True))
    r.expect(b"]", "] closing a binary section (part numbers only)")
    partial = None
    if word != "BINARY.SIZE" and r.maybe(b"<"):
        start = r.number()
        r.expect(b".")
        length = r.number(nonzero=True)
        r.expect(b">")
        partial = (start, length)
    name = "BINARY.SIZE" if word == "BINARY.SIZE" else "BINARY[]"
    return FetchAtt(name, Section(tuple(parts)), partial, word != "BINARY", binary=True)


def _section(r: Reader) -> Section:
    r.expect(b"[")
    parts: list[int] = []
    spec = ""
    fields: tuple[str, ...] = ()
    while r.peek().isdigit():
        parts.append(r.number(nonzero=True))
        if not r.maybe(b"."):
            break
        if not r.peek().isdigit():
            break
    if r.peek() != b"]":
        if parts and r.data[r.pos - 1 : r.pos] != b".":
            raise ParseError("bad section")
        word = r.regex(_SECTION_WORD, "a section text").decode().upper()
        if word not in ("HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"):
            raise ParseError(f"unknown section {word}")
        if word == "MIME" and not parts:
            raise ParseError("MIME needs a part number")
        spec = word
        if word.startswith("HEADER.FIELDS"):
            r.sp()
            r.open_paren()
            names = [r.astring().decode("ascii", "replace").upper()]
            while r.maybe(b" "):
                names.append(r.astring().decode("ascii", "replace").upper())
            r.close_paren()
            fields = tuple(names)
    r.expect(b"]")
    return Section(tuple(parts), spec, fields)


@dataclass(frozen=True)
class QResync:
    """SELECT's QRESYNC parameter (RFC 7162 §3.2.5)."""

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None
    match: tuple[SequenceSet, SequenceSet] | None  # (known sequence set, known uid set)


# --- SELECT parameters (RFC 4466 §2.1, RFC 7162) and ID's (RFC 2971) -----------------------


def select_params(r: Reader, command) -> None:
    """select-params (RFC 4466 §2.1): CONDSTORE, and QRESYNC (uidvalidity modseq [known-uids
    [(known-sequence-set known-uid-set)]]) (RFC 7162 §3.2.5). Other parameters are ignored."""
    r.open_paren()
    if r.maybe(b")"):
        r.depth -= 1
        return
    while True:
        word = r.atom().upper()
        command.params.append(word)
        if word == "QRESYNC":
            r.sp()
            r.open_paren()
            uidvalidity = r.number(nonzero=True)
            r.sp()
            modseq = r.modseq(nonzero=True)
            known = None
            match = None
            if r.maybe(b" "):
                if r.peek() != b"(":
                    known = r.sequence_set()
                    r.maybe(b" ")
                if r.peek() == b"(":
                    r.open_paren()
                    seqs = r.sequence_set()
                    r.sp()
                    uids = r.sequence_set()
                    r.close_paren()
                    match = (seqs, uids)
            r.close_paren()
            if any(s.saved for s in (known, *(match or ())) if s is not None):
                raise ParseError("$ names no messages outside the selected folder")
            command.qresync = QResync(uidvalidity, modseq, known, match)
        elif r.peek() == b" " and r.data[r.pos + 1 : r.pos + 2] == b"(":
            r.sp()
            r.skip_list()  # the value of a parameter not known here
        if not r.maybe(b" "):
            break
    r.close_paren()


def id_params(r: Reader) -> dict[str, str | None] | None:
    """RFC 2971: "(" string SP nstring *(SP string SP nstring) ")" / NIL."""
    if r.maybe_ci(b"NIL"):
        return None
    r.open_paren()
    params: dict[str, str | None] = {}
    while not r.maybe(b")"):
        if params:
            r.sp()
        key = r.string().decode("utf-8", "replace")
        r.sp()
        value = None if r.maybe_ci(b"NIL") else r.string().decode("utf-8", "replace")
        if len(params) < 30:
            params[key[:30]] = None if value is None else value[:1024]
    r.depth -= 1
    return params
