"""IMAP4rev1 command parser: bytes of one complete command in, a typed command object out.

Pure (no I/O, no Django). The server frames a command (a line, and for each line ending in a
literal marker ``{n}`` / ``{n+}`` the n octets that follow, RFC 3501 §4.3 and RFC 7888
LITERAL+) and hands the whole thing here, without its final CRLF.

Implements the RFC 3501 §9 grammar the server needs: atoms, quoted strings, literals,
astrings, parenthesised lists, sequence sets (``*``, ranges in either order, §6.4.8 / §9
``seq-range``), dates, flags, search keys with OR/NOT/nesting (§6.4.4), fetch attributes with
section specs and partials (§6.4.5), and modified UTF-7 mailbox names (§5.1.3).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
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
    """A sequence set as written: ranges whose ends are numbers or None for ``*``."""

    ranges: tuple[tuple[int | None, int | None], ...]

    def resolve(self, largest: int) -> list[tuple[int, int]]:
        """Sorted, merged inclusive ranges with ``*`` replaced by ``largest`` (RFC 3501 §9:
        ranges may be written in either order)."""
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
        text = f"BODY[{self.section.wire()}]"
        if self.partial is not None:
            text += f"<{self.partial[0]}>"
        return text


@dataclass
class Command:
    tag: str
    name: str
    uid: bool = False
    args: dict = field(default_factory=dict)


# --- Modified UTF-7 (RFC 3501 §5.1.3) ----------------------------------------------------------


def decode_mailbox(raw: bytes) -> str:
    """Decode a mailbox name from modified UTF-7. Names sent as raw UTF-8 (common client
    behaviour) are accepted too. Raises ParseError on a broken ``&...-`` sequence."""
    if any(b > 127 for b in raw):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("mailbox name is neither modified UTF-7 nor UTF-8") from None
    text = raw.decode("ascii")
    if "&" not in text:
        return text
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
            raise ParseError("unterminated modified UTF-7 sequence in mailbox name")
        chunk = text[i + 1 : end]
        if not chunk:
            out.append("&")
        else:
            b64 = chunk.replace(",", "/")
            b64 += "=" * (-len(b64) % 4)
            try:
                out.append(base64.b64decode(b64, validate=True).decode("utf-16-be"))
            except (ValueError, UnicodeDecodeError):
                raise ParseError("bad modified UTF-7 sequence in mailbox name") from None
        i = end + 1
    return "".join(out)


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


class _Reader:
    __slots__ = ("data", "pos", "depth")

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0
        self.depth = 0

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

    def literal(self) -> bytes:
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
            return self.quoted()
        if c == b"{":
            return self.literal()
        raise ParseError("expected a string")

    def astring(self) -> bytes:
        c = self.peek()
        if c in (b'"', b"{"):
            return self.string()
        return self.regex(_ASTRING_RE, "an astring")

    def astring_text(self) -> str:
        return self.astring().decode("utf-8", "surrogateescape")

    def mailbox(self) -> str:
        return decode_mailbox(self.astring())

    def list_mailbox(self) -> str:
        c = self.peek()
        if c in (b'"', b"{"):
            return decode_mailbox(self.string())
        return decode_mailbox(self.regex(_LIST_RE, "a mailbox pattern"))

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


# --- Commands ----------------------------------------------------------------------------------

_NO_ARGS = frozenset(
    "CAPABILITY NOOP LOGOUT STARTTLS CHECK CLOSE EXPUNGE UNSELECT IDLE NAMESPACE".split()
)
_MAILBOX_ARG = frozenset("DELETE SUBSCRIBE UNSUBSCRIBE".split())


def parse_tag(data: bytes) -> str | None:
    match = _TAG_RE.match(data)
    if match is None or data[match.end() : match.end() + 1] != b" ":
        return None
    return match.group().decode("ascii")


def parse_command(data: bytes) -> Command:
    """Parse one complete command (without its final CRLF). Raises ParseError (with the tag
    when one could be read)."""
    tag = parse_tag(data)
    if tag is None:
        raise ParseError("missing or invalid tag")
    r = _Reader(data)
    r.pos = len(tag) + 1
    try:
        name = r.atom().upper()
        command = Command(tag, name)
        if name == "UID":
            r.sp()
            name = r.atom().upper()
            if name not in ("FETCH", "STORE", "SEARCH", "COPY", "MOVE", "EXPUNGE"):
                raise ParseError(f"UID {name} is not a command")
            command.name = name
            command.uid = True
        _parse_args(r, command)
        r.end()
        return command
    except ParseError as exc:
        exc.tag = tag
        raise
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise ParseError(f"malformed command: {exc}", tag) from None


def _parse_args(r: _Reader, c: Command) -> None:
    name = c.name
    a = c.args
    if name in _NO_ARGS and not c.uid:
        return
    if name in _MAILBOX_ARG:
        r.sp()
        a["mailbox"] = r.mailbox()
    elif name == "LOGIN":
        r.sp()
        a["user"] = r.astring_text()
        r.sp()
        a["password"] = r.astring_text()
    elif name == "AUTHENTICATE":
        r.sp()
        a["mechanism"] = r.atom().upper()
        a["initial"] = None
        if r.maybe(b" "):
            # SASL-IR (RFC 4959): base64 or "=" for an empty response.
            a["initial"] = r.regex(re.compile(rb"[A-Za-z0-9+/]*={0,2}"), "base64").decode()
    elif name in ("SELECT", "EXAMINE"):
        r.sp()
        a["mailbox"] = r.mailbox()
        a["params"] = []
        a["qresync"] = None
        if r.maybe(b" "):
            _select_params(r, a)
    elif name == "CREATE":
        r.sp()
        a["mailbox"] = r.mailbox()
        if r.maybe(b" "):
            _skip_list(r)  # create-params such as USE (RFC 6154 §3) are accepted and ignored
    elif name == "RENAME":
        r.sp()
        a["old"] = r.mailbox()
        r.sp()
        a["new"] = r.mailbox()
    elif name in ("LIST", "LSUB"):
        r.sp()
        a["select_opts"] = []
        if name == "LIST" and r.peek() == b"(":
            a["select_opts"] = _atom_list(r)
            r.sp()
        a["reference"] = r.list_mailbox() if r.peek() != b'"' else decode_mailbox(r.string())
        r.sp()
        a["pattern"] = r.list_mailbox()
        a["return_opts"] = []
        if name == "LIST" and r.maybe(b" "):
            if not r.maybe_ci(b"RETURN"):
                raise ParseError("expected RETURN")
            r.sp()
            a["return_opts"] = _atom_list(r)
    elif name == "STATUS":
        r.sp()
        a["mailbox"] = r.mailbox()
        r.sp()
        a["items"] = _atom_list(r)
        if not a["items"]:
            raise ParseError("STATUS needs at least one item")
    elif name == "APPEND":
        r.sp()
        a["mailbox"] = r.mailbox()
        r.sp()
        a["flags"] = []
        a["date"] = None
        if r.peek() == b"(":
            a["flags"] = r.flag_list()
            r.sp()
        if r.peek() == b'"':
            a["date"] = r.date_time()
            r.sp()
        if r.peek() != b"{":
            raise ParseError("APPEND needs the message as a literal")
        a["message"] = r.literal()
    elif name == "SEARCH":
        r.sp()
        a["charset"] = None
        if r.maybe_ci(b"CHARSET"):
            r.sp()
            charset = r.astring().decode("ascii", "replace").upper()
            if charset not in ("UTF-8", "US-ASCII", "UTF8"):
                raise BadCharset(f"charset {charset} is not supported")
            a["charset"] = charset
            r.sp()
        keys = [_search_key(r)]
        while r.maybe(b" "):
            keys.append(_search_key(r))
        a["key"] = keys[0] if len(keys) == 1 else ("and", keys)
    elif name == "FETCH":
        r.sp()
        a["set"] = r.sequence_set()
        r.sp()
        a["atts"] = _fetch_atts(r)
        a["changedsince"] = None
        a["vanished"] = False
        if r.maybe(b" "):
            # RFC 7162 §3.1.4.1 CHANGEDSINCE, §3.2.6 VANISHED (UID FETCH only).
            r.open_paren()
            while True:
                word = r.atom().upper()
                if word == "CHANGEDSINCE":
                    r.sp()
                    a["changedsince"] = r.modseq()
                elif word == "VANISHED" and c.uid:
                    a["vanished"] = True
                else:
                    raise ParseError(f"unknown FETCH modifier {word}")
                if not r.maybe(b" "):
                    break
            r.close_paren()
            if a["vanished"] and a["changedsince"] is None:
                raise ParseError("VANISHED needs CHANGEDSINCE")
    elif name == "STORE":
        r.sp()
        a["set"] = r.sequence_set()
        r.sp()
        a["unchangedsince"] = None
        if r.peek() == b"(":
            # RFC 7162 §3.1.3: the only STORE modifier is UNCHANGEDSINCE.
            r.open_paren()
            if r.atom().upper() != "UNCHANGEDSINCE":
                raise ParseError("unknown STORE modifier")
            r.sp()
            a["unchangedsince"] = r.modseq()
            r.close_paren()
            r.sp()
        item = r.regex(re.compile(rb"[+-]?FLAGS(\.SILENT)?", re.I), "FLAGS, +FLAGS or -FLAGS")
        item = item.decode().upper()
        a["mode"] = {"+": "add", "-": "remove"}.get(item[0], "replace")
        a["silent"] = item.endswith(".SILENT")
        r.sp()
        if r.peek() == b"(":
            a["flags"] = r.flag_list()
        else:
            flags = [r.flag()]
            while r.maybe(b" "):
                flags.append(r.flag())
            a["flags"] = flags
    elif name in ("COPY", "MOVE"):
        r.sp()
        a["set"] = r.sequence_set()
        r.sp()
        a["mailbox"] = r.mailbox()
    elif name == "EXPUNGE" and c.uid:
        r.sp()
        a["set"] = r.sequence_set()
    elif name == "ENABLE":
        caps = []
        while r.maybe(b" "):
            caps.append(r.atom().upper())
        if not caps:
            raise ParseError("ENABLE needs a capability")
        a["caps"] = caps
    elif name == "ID":
        r.sp()
        a["params"] = _id_params(r)
    elif name == "DONE":
        pass
    else:
        raise ParseError(f"unknown command {name}")


def _atom_list(r: _Reader) -> list[str]:
    r.open_paren()
    items = []
    if not r.maybe(b")"):
        items.append(r.atom().upper())
        while r.maybe(b" "):
            if r.peek() == b"(":
                _skip_list(r)
                continue
            items.append(r.atom().upper())
        r.expect(b")")
    r.depth -= 1
    return items


def _select_params(r: _Reader, a: dict) -> None:
    """select-params (RFC 4466 §2.1): CONDSTORE, and QRESYNC (uidvalidity modseq [known-uids
    [(known-sequence-set known-uid-set)]]) (RFC 7162 §3.2.5). Other parameters are ignored."""
    r.open_paren()
    if r.maybe(b")"):
        r.depth -= 1
        return
    while True:
        word = r.atom().upper()
        a["params"].append(word)
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
            a["qresync"] = (uidvalidity, modseq, known, match)
        elif r.peek() == b" " and r.data[r.pos + 1 : r.pos + 2] == b"(":
            r.sp()
            _skip_list(r)  # the value of a parameter not known here
        if not r.maybe(b" "):
            break
    r.close_paren()


def _optional_atom_list(r: _Reader) -> list[str]:
    if r.maybe(b" "):
        return _atom_list(r)
    return []


def _skip_list(r: _Reader) -> None:
    """Consume one parenthesised list of atoms, strings and lists (ignored extensions)."""
    r.open_paren()
    while not r.maybe(b")"):
        c = r.peek()
        if not c:
            raise ParseError("unterminated list")
        if c == b" ":
            r.pos += 1
        elif c == b"(":
            _skip_list(r)
        elif c in (b'"', b"{"):
            r.string()
        else:
            r.regex(_LIST_RE, "a list item")
    r.depth -= 1


def _id_params(r: _Reader) -> dict[str, str | None] | None:
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


_FLAG_KEYS = {
    "ANSWERED": ("flag", "answered", True),
    "DELETED": ("flag", "deleted", True),
    "DRAFT": ("flag", "draft", True),
    "FLAGGED": ("flag", "flagged", True),
    "SEEN": ("flag", "seen", True),
    "UNANSWERED": ("flag", "answered", False),
    "UNDELETED": ("flag", "deleted", False),
    "UNDRAFT": ("flag", "draft", False),
    "UNFLAGGED": ("flag", "flagged", False),
    "UNSEEN": ("flag", "seen", False),
    "ALL": ("all",),
    "NEW": ("new",),
    "OLD": ("old",),
    "RECENT": ("recent",),
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


def _search_text(r: _Reader) -> str:
    return r.astring().decode("utf-8", "replace")


def _search_key(r: _Reader) -> tuple:
    """One search key of RFC 3501 §6.4.4 as a tuple tree (see services.imap_search)."""
    c = r.peek()
    if c == b"(":
        r.open_paren()
        keys = [_search_key(r)]
        while r.maybe(b" "):
            keys.append(_search_key(r))
        r.close_paren()
        return keys[0] if len(keys) == 1 else ("and", keys)
    if c and (c.isdigit() or c == b"*"):
        return ("seq", r.sequence_set())
    word = r.atom().upper()
    if word in _FLAG_KEYS:
        return _FLAG_KEYS[word]
    if word in _HEADER_KEYS:
        r.sp()
        return ("header", _HEADER_KEYS[word], _search_text(r))
    if word in _DATE_KEYS:
        r.sp()
        kind, op = _DATE_KEYS[word]
        return (kind, op, r.date())
    if word in ("BODY", "TEXT"):
        r.sp()
        return (word.lower(), _search_text(r))
    if word in ("KEYWORD", "UNKEYWORD"):
        r.sp()
        return ("keyword", r.flag(), word == "KEYWORD")
    if word == "HEADER":
        r.sp()
        name = r.astring().decode("ascii", "replace").lower()
        r.sp()
        return ("header", name, _search_text(r))
    if word in ("LARGER", "SMALLER"):
        r.sp()
        return (word.lower(), r.number())
    if word == "UID":
        r.sp()
        return ("uid", r.sequence_set())
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
        return ("modseq", r.modseq())
    if word == "NOT":
        r.sp()
        r.depth += 1
        if r.depth > MAX_DEPTH:
            raise ParseError("search keys too deeply nested")
        key = _search_key(r)
        r.depth -= 1
        return ("not", key)
    if word == "OR":
        r.sp()
        r.depth += 1
        if r.depth > MAX_DEPTH:
            raise ParseError("search keys too deeply nested")
        left = _search_key(r)
        r.sp()
        right = _search_key(r)
        r.depth -= 1
        return ("or", left, right)
    raise ParseError(f"unknown search key {word}")


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


def _fetch_atts(r: _Reader) -> list[FetchAtt]:
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


def _fetch_att(r: _Reader) -> FetchAtt:
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
    raise ParseError(f"unknown fetch attribute {word}")


def _section(r: _Reader) -> Section:
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
        word = r.regex(re.compile(rb"[A-Za-z.]+"), "a section text").decode().upper()
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
