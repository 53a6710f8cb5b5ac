"""IMAP4rev1 lexical layer: the reader over the bytes of one command and the value types the
commands carry. Pure (no I/O, no Django); :mod:`parser` builds typed commands with it.

Implements the RFC 3501 §9 building blocks: atoms, quoted strings, literals (and LITERAL+,
RFC 7888; literal8, RFC 3516 §7, where a command allows it), astrings, parenthesised lists,
sequence sets (``*``, ranges in either order, §6.4.8 / §9 ``seq-range``), dates, flags, fetch
attributes with section specs and partials (§6.4.5), and modified UTF-7 mailbox names (§5.1.3),
or UTF-8 ones once the session enabled UTF8=ACCEPT or IMAP4rev2 (RFC 6855 §3, RFC 9051 §5.1):
the reader's ``utf8`` switch.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

# Nesting of parenthesised lists and search keys; deeper input is refused with BAD.
MAX_DEPTH = 32
MAX_NUMBER = 4294967295  # nz-number / number are 32-bit unsigned (RFC 3501 §9)
MAX_MODSEQ = 2**63 - 1  # mod-sequence-value (RFC 7162 §7)

_ATOM_SPECIALS = frozenset(b'(){ %*"\\]') | frozenset(range(0, 32)) | {127}
_ATOM_CHARS = bytes(c for c in range(128) if c not in _ATOM_SPECIALS)
# ASTRING-CHAR adds "]" (resp-specials), list-wildcards add "%" and "*".
_ATOM_RE = re.compile(rb"[" + re.escape(_ATOM_CHARS) + rb"]+")
_ASTRING_RE = re.compile(rb"[" + re.escape(_ATOM_CHARS + b"]") + rb"]+")
_LIST_RE = re.compile(rb"[" + re.escape(_ATOM_CHARS + b"]%*") + rb"]+")
_TAG_RE = re.compile(rb"[" + re.escape(_ATOM_CHARS.replace(b"+", b"")) + rb"]+")
_SEQ_RE = re.compile(rb"[0-9*:,]+")
_NUMBER_RE = re.compile(rb"[0-9]+")
_LITERAL_END = re.compile(rb"\{(\d{1,20})(\+?)\}\r?\n?\Z")
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]


class ParseError(Exception):
    """The command is malformed: the server answers ``tag BAD message``."""

    def __init__(self, message: str, tag: str | None = None):
        super().__init__(message)
        self.tag = tag


class BadCharset(ParseError):
    """SEARCH with an unsupported CHARSET: ``NO [BADCHARSET (UTF-8 US-ASCII)]`` (§6.4.4)."""


def literal_request(line: bytes) -> tuple[int, bool] | None:
    """If a line ends with a literal marker, return (octets, non_synchronizing)."""
    if not line.rstrip(b"\r\n").endswith(b"}"):
        return None
    match = _LITERAL_END.search(line)
    if match is None:
        return None
    return int(match.group(1)), bool(match.group(2))


# --- Value types -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SequenceSet:
    """A sequence set as written: ranges whose ends are numbers or None for ``*``; or ``$``,
    the saved search result (SEARCHRES, RFC 5182 §3: ``sequence-set =/ seq-last-command``),
    which only the session can resolve (``Selected.resolve``): ``saved`` with no ranges."""

    ranges: tuple[tuple[int | None, int | None], ...]
    saved: bool = False

    def resolve(self, largest: int) -> list[tuple[int, int]]:
        """Sorted, merged inclusive ranges with ``*`` replaced by ``largest`` (RFC 3501 §9:
        ranges may be written in either order). Empty for ``$``."""
        out = []
        for a, b in self.ranges:
            a = largest if a is None else a
            b = largest if b is None else b
            out.append((a, b) if a <= b else (b, a))
        out.sort()
        merged: list[tuple[int, int]] = []
        for lo, hi in out:
            if merged and lo <= merged[-1][1] + 1:
                if hi > merged[-1][1]:
                    merged[-1] = (merged[-1][0], hi)
            else:
                merged.append((lo, hi))
        return merged

    @property
    def explicit_max(self) -> int:
        """The largest number written (not ``*``), 0 if none."""
        return max((n for pair in self.ranges for n in pair if n is not None), default=0)


SAVED_RESULT = SequenceSet((), saved=True)


@dataclass(frozen=True)
class Section:
    """A BODY[...] section (§6.4.5): part numbers and a text specifier."""

    parts: tuple[int, ...] = ()
    spec: str = ""  # "", HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME
    fields: tuple[str, ...] = ()

    def wire(self) -> str:
        text = ".".join(str(n) for n in self.parts)
        if self.spec:
            text = f"{text}.{self.spec}" if text else self.spec
        if self.fields:
            text += " (" + " ".join(self.fields) + ")"
        return text


@dataclass(frozen=True)
class FetchAtt:
    name: str  # UID FLAGS ENVELOPE INTERNALDATE RFC822.SIZE RFC822 RFC822.HEADER RFC822.TEXT
    # BODY BODYSTRUCTURE MODSEQ, or BODY[] when section is set
    section: Section | None = None
    partial: tuple[int, int] | None = None
    peek: bool = False
    binary: bool = False  # BINARY[...] or BINARY.SIZE[...] (RFC 3516 §4.2): name says which

    @property
    def needs_blob(self) -> bool:
        return self.section is not None or self.name in ("RFC822", "RFC822.HEADER", "RFC822.TEXT")

    @property
    def sets_seen(self) -> bool:
        """Non-peek body fetches set \\Seen (§6.4.5); RFC822.HEADER is a peek."""
        return (self.section is not None and not self.peek) or self.name in (
            "RFC822",
            "RFC822.TEXT",
        )

    def response_name(self) -> str:
        if self.section is None:
            return self.name
        if self.binary:
            label = "BINARY.SIZE" if self.name == "BINARY.SIZE" else "BINARY"
            text = f"{label}[{self.section.wire()}]"
        else:
            text = f"BODY[{self.section.wire()}]"
        if self.partial is not None:
            text += f"<{self.partial[0]}>"
        return text


# --- Modified UTF-7 (RFC 3501 §5.1.3) ----------------------------------------------------------


class MailboxName(str):
    """A mailbox name as decoded from the wire, knowing whether the wire form was the one
    canonical modified UTF-7 spelling of the name (RFC 3501 §5.1.3). A name that was not
    (a broken ``&...-`` sequence, a non-canonical one, raw 8-bit octets) still names nothing
    that exists, so commands on it answer NO as for any unknown name (imaptest's atoms script);
    CREATE and RENAME refuse it rather than store a name clients would spell differently."""

    canonical: bool


def _named(text: str, canonical: bool) -> MailboxName:
    name = MailboxName(text)
    name.canonical = canonical
    return name


def decode_mailbox(raw: bytes) -> MailboxName:
    """Decode a mailbox name from modified UTF-7. Never raises: a name that is not valid
    modified UTF-7 is taken as written (raw UTF-8, common client behaviour, decoded as such)
    and marked not canonical (see :class:`MailboxName`)."""
    if any(b > 127 for b in raw):
        try:
            return _named(raw.decode("utf-8"), False)
        except UnicodeDecodeError:
            return _named(raw.decode("latin-1"), False)
    text = raw.decode("ascii")
    if "&" not in text:
        return _named(text, True)
    out = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c != "&":
            out.append(c)
            i += 1
            continue
        end = text.find("-", i + 1)
        if end < 0:
            return _named(text, False)
        chunk = text[i + 1 : end]
        if not chunk:
            out.append("&")
        else:
            b64 = chunk.replace(",", "/")
            b64 += "=" * (-len(b64) % 4)
            try:
                out.append(base64.b64decode(b64, validate=True).decode("utf-16-be"))
            except (ValueError, UnicodeDecodeError):
                return _named(text, False)
        i = end + 1
    decoded = "".join(out)
    return _named(decoded, encode_mailbox(decoded) == text)


# RFC 6855 §3: UTF-8 mailbox names are Net-Unicode (RFC 5198 §2, so NFC) without controls, DEL,
# or the line and paragraph separators.
_NAME_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def decode_mailbox_utf8(raw: bytes) -> MailboxName:
    """A mailbox name as sent by a UTF-8 session (RFC 6855 §3, RFC 9051 §5.1): UTF-8 as written,
    ``&`` being just a character. Octets that are not UTF-8 are a syntax error (BAD, RFC 6855
    §3); a name not in NFC, or with control characters, is marked not canonical."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("mailbox name is not UTF-8") from None
    canonical = unicodedata.is_normalized("NFC", text) and not _NAME_CONTROLS.search(text)
    return _named(text, canonical)


def encode_mailbox(name: str) -> str:
    """Encode a mailbox name in modified UTF-7 (printable ASCII stays, ``&`` becomes ``&-``)."""
    if name.isascii() and "&" not in name:
        return name
    out = []
    pending: list[str] = []

    def flush():
        if pending:
            data = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(data).decode().rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


# --- The reader --------------------------------------------------------------------------------


class Reader:
    __slots__ = ("data", "pos", "depth", "utf8")

    def __init__(self, data: bytes, utf8: bool = False):
        self.data = data
        self.pos = 0
        self.depth = 0
        self.utf8 = utf8  # UTF8=ACCEPT or IMAP4rev2 enabled: UTF-8 names and quoted strings

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def peek(self, n: int = 1) -> bytes:
        return self.data[self.pos : self.pos + n]

    def expect(self, token: bytes, what: str | None = None) -> None:
        if self.data[self.pos : self.pos + len(token)] != token:
            raise ParseError(f"expected {what or token.decode()!s}")
        self.pos += len(token)

    def sp(self) -> None:
        self.expect(b" ", "a space")

    def maybe(self, token: bytes) -> bool:
        if self.data[self.pos : self.pos + len(token)] == token:
            self.pos += len(token)
            return True
        return False

    def maybe_ci(self, word: bytes) -> bool:
        """Consume ``word`` case-insensitively when it is followed by a non-atom char."""
        end = self.pos + len(word)
        if self.data[self.pos : end].upper() == word and (
            end >= len(self.data) or self.data[end] not in _ATOM_CHARS
        ):
            self.pos = end
            return True
        return False

    def end(self) -> None:
        if not self.at_end():
            raise ParseError("unexpected characters at the end of the command")

    def regex(self, pattern: re.Pattern, what: str) -> bytes:
        match = pattern.match(self.data, self.pos)
        if match is None:
            raise ParseError(f"expected {what}")
        self.pos = match.end()
        return match.group()

    def atom(self) -> str:
        return self.regex(_ATOM_RE, "an atom").decode("ascii")

    def number(self, nonzero: bool = False) -> int:
        value = int(self.regex(_NUMBER_RE, "a number"))
        if value > MAX_NUMBER or (nonzero and value == 0):
            raise ParseError("number out of range")
        return value

    def modseq(self, nonzero: bool = False) -> int:
        """mod-sequence-value: 1*DIGIT up to 2^63-1 (RFC 7162 §7); valzer allows 0."""
        text = self.regex(_NUMBER_RE, "a mod-sequence")
        if len(text) > 19:
            raise ParseError("mod-sequence out of range")
        value = int(text)
        if value > MAX_MODSEQ or (nonzero and value == 0):
            raise ParseError("mod-sequence out of range")
        return value

    def quoted(self) -> bytes:
        self.expect(b'"')
        out = bytearray()
        data = self.data
        i = self.pos
        n = len(data)
        while i < n:
            c = data[i]
            if c == 0x22:
                self.pos = i + 1
                return bytes(out)
            if c == 0x5C:
                i += 1
                if i >= n or data[i] not in b'"\\':
                    raise ParseError("bad escape in quoted string")
                c = data[i]
            elif c in (0x0A, 0x0D, 0x00):
                raise ParseError("line break in quoted string")
            out.append(c)
            i += 1
        raise ParseError("unterminated quoted string")

    def _checked_quoted(self) -> bytes:
        value = self.quoted()
        if self.utf8 and not value.isascii():
            # RFC 6855 §3: 8-bit octets in a quoted string must be UTF-8, else BAD.
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                raise ParseError("quoted string is not UTF-8") from None
        return value

    def literal(self, binary: bool = False) -> bytes:
        """A literal; with ``binary``, a literal8 (``~{n}``, RFC 3516 §7) is taken too. A
        literal8 anywhere else is refused: RFC 3516 and RFC 9051 allow it only for APPEND's
        message, the one place where NUL octets may travel."""
        if self.maybe(b"~"):
            if not binary:
                raise ParseError("literal8 is only allowed for APPEND's message (RFC 3516)")
        self.expect(b"{")
        size = int(self.regex(_NUMBER_RE, "a literal size"))
        self.maybe(b"+")
        self.expect(b"}")
        if not self.maybe(b"\r\n"):
            self.expect(b"\n", "CRLF after a literal marker")
        end = self.pos + size
        if end > len(self.data):
            raise ParseError("literal shorter than announced")
        value = self.data[self.pos : end]
        self.pos = end
        return value

    def string(self) -> bytes:
        c = self.peek()
        if c == b'"':
            return self._checked_quoted()
        if c in (b"{", b"~"):
            return self.literal()
        raise ParseError("expected a string")

    def astring(self) -> bytes:
        c = self.peek()
        if c in (b'"', b"{") or self.peek(2) == b"~{":
            return self.string()
        return self.regex(_ASTRING_RE, "an astring")

    def mailbox_name(self, raw: bytes) -> str:
        return decode_mailbox_utf8(raw) if self.utf8 else decode_mailbox(raw)

    def astring_text(self) -> str:
        return self.astring().decode("utf-8", "surrogateescape")

    def mailbox(self) -> str:
        return self.mailbox_name(self.astring())

    def list_mailbox(self) -> str:
        c = self.peek()
        if c in (b'"', b"{") or self.peek(2) == b"~{":
            return self.mailbox_name(self.string())
        return self.mailbox_name(self.regex(_LIST_RE, "a mailbox pattern"))

    def open_paren(self) -> None:
        self.expect(b"(")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ParseError("too deeply nested")

    def close_paren(self) -> None:
        self.expect(b")")
        self.depth -= 1

    def flag(self) -> str:
        if self.maybe(b"\\"):
            if self.maybe(b"*"):
                return "\\*"
            return "\\" + self.atom()
        return self.atom()

    def flag_list(self) -> list[str]:
        self.open_paren()
        flags = []
        if not self.maybe(b")"):
            flags.append(self.flag())
            while self.maybe(b" "):
                flags.append(self.flag())
            self.expect(b")")
        self.depth -= 1
        return flags

    def sequence_set(self) -> SequenceSet:
        if self.maybe(b"$"):
            # RFC 5182 §3: "$" stands alone; "$,1" or "1:$" is no sequence set.
            if self.peek() and self.peek() in b"0123456789*:,$":
                raise ParseError("$ cannot be combined with other sequence numbers")
            return SAVED_RESULT
        text = self.regex(_SEQ_RE, "a sequence set").decode()
        ranges = []
        for item in text.split(","):
            ends = item.split(":")
            if len(ends) > 2 or not all(ends):
                raise ParseError("bad sequence set")
            nums = []
            for end in ends:
                if end == "*":
                    nums.append(None)
                else:
                    if not end.isdigit():
                        raise ParseError("bad sequence set")
                    value = int(end)
                    if value == 0 or value > MAX_NUMBER:
                        raise ParseError("sequence numbers are 1 to 4294967295")
                    nums.append(value)
            ranges.append((nums[0], nums[-1]))
        return SequenceSet(tuple(ranges))

    def date(self) -> date:
        quoted = self.maybe(b'"')
        text = self.regex(re.compile(rb"[0-9]{1,2}-[A-Za-z]{3}-[0-9]{4}"), "a date").decode()
        if quoted:
            self.expect(b'"')
        day, month, year = text.split("-")
        try:
            return date(int(year), _MONTHS.index(month.lower()) + 1, int(day))
        except ValueError:
            raise ParseError("invalid date") from None

    def date_time(self) -> datetime:
        """date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE"""
        raw = self.quoted().decode("ascii", "replace")
        match = re.fullmatch(
            r" ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)", raw
        )
        if not match:
            raise ParseError("invalid date-time")
        day, mon, year, hh, mm, ss, sign, zh, zm = match.groups()
        try:
            offset = timedelta(hours=int(zh), minutes=int(zm))
            tz = timezone(offset if sign == "+" else -offset)
            value = datetime(
                int(year), _MONTHS.index(mon.lower()) + 1, int(day), int(hh), int(mm), int(ss),
                tzinfo=tz,
            )
        except ValueError:
            raise ParseError("invalid date-time") from None
        return value.astimezone(UTC)

    def atom_list(self) -> list[str]:
        """``(atom ...)`` upper-cased; nested lists (values of unknown options) are skipped."""
        self.open_paren()
        items = []
        if not self.maybe(b")"):
            items.append(self.atom().upper())
            while self.maybe(b" "):
                if self.peek() == b"(":
                    self.skip_list()
                    continue
                items.append(self.atom().upper())
            self.expect(b")")
        self.depth -= 1
        return items

    def skip_list(self) -> None:
        """Consume one parenthesised list of atoms, strings and lists (ignored extensions)."""
        self.open_paren()
        while not self.maybe(b")"):
            c = self.peek()
            if not c:
                raise ParseError("unterminated list")
            if c == b" ":
                self.pos += 1
            elif c == b"(":
                self.skip_list()
            elif c in (b'"', b"{"):
                self.string()
            else:
                self.regex(_LIST_RE, "a list item")
        self.depth -= 1


def parse_tag(data: bytes) -> str | None:
    match = _TAG_RE.match(data)
    if match is None or data[match.end() : match.end() + 1] != b" ":
        return None
    return match.group().decode("ascii")
