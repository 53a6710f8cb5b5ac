"""vCard (RFC 6350, version 4.0; 3.0 of RFC 2426 is read too) for the address book: a strict,
bounded reader and a writer. Only what the address book keeps is interpreted (FN, N, EMAIL,
TEL, NOTE, CATEGORIES, UID, and KIND with MEMBER for groups); other properties are checked
for syntax and skipped.

Groups: a card with ``KIND:group`` (RFC 6350 §6.1.4) is a group whose members are its
``MEMBER`` URIs (§6.6.5): a member's ``UID`` (often ``urn:uuid:…``) or ``mailto:`` address.
MEMBER is only meaningful in a group card (§6.6.5 "MUST only be used if the value of the KIND
property is group"); elsewhere it is skipped, as other unknown properties are.

Strict means: a file that is not a vCard, a card without END or FN, a line without a colon,
text that is not UTF-8 (RFC 6350 §3.1) or a file beyond the limits is refused as a whole with
a :class:`VCardError` saying where, so an import never half-succeeds on garbage. Nothing here
backtracks on client input: lines are split with ``str`` methods, not regular expressions."""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_BYTES = 2 * 1024 * 1024
MAX_CARDS = 5000
MAX_LINE = 16 * 1024  # one unfolded content line
MAX_PROPERTIES = 500  # per card
MAX_VALUES = 50  # e-mail addresses, phones or categories kept per card
VERSIONS = ("4.0", "3.0")
FOLD_OCTETS = 75  # RFC 6350 §3.2: lines SHOULD NOT be longer than 75 octets


class VCardError(ValueError):
    """The data is not a vCard this reader accepts; the message is for the person importing."""


@dataclass
class Card:
    name: str
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    note: str = ""
    categories: list[str] = field(default_factory=list)
    uid: str = ""
    kind: str = "individual"  # RFC 6350 §6.1.4: individual, group, org, location (or x-name)
    members: list[str] = field(default_factory=list)  # MEMBER URIs, for a group

    @property
    def is_group(self) -> bool:
        return self.kind == "group"


def _unfold(text: str) -> list[tuple[int, str]]:
    """Content lines with their first physical line number (RFC 6350 §3.2: a CRLF followed by
    one space or tab continues the line)."""
    lines: list[tuple[int, str]] = []
    for number, physical in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        if physical[:1] in (" ", "\t") and lines:
            first, sofar = lines[-1]
            if len(sofar) + len(physical) > MAX_LINE:
                raise VCardError(f"Line {first} is too long.")
            lines[-1] = (first, sofar + physical[1:])
        elif physical.strip():
            if len(physical) > MAX_LINE:
                raise VCardError(f"Line {number} is too long.")
            lines.append((number, physical))
    return lines


def _unescape(value: str) -> str:
    """RFC 6350 §3.4: backslash escapes ``\\\\``, ``\\,``, ``\\;`` and ``\\n``."""
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            out.append("\n" if nxt in "nN" else nxt)
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _split_unescaped(value: str, sep: str) -> list[str]:
    parts, current, i = [], [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            current.append(value[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def _parse_line(number: int, line: str) -> tuple[str, str]:
    """``[group "."] name *(";" param) ":" value`` -> (upper-case name, raw value). Colons
    inside quoted parameter values do not end the name part (RFC 6350 §3.3)."""
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == ":" and not quoted:
            head, value = line[:i], line[i + 1 :]
            break
    else:
        raise VCardError(f"Line {number} is not a vCard property (no colon).")
    name = head.split(";", 1)[0].rsplit(".", 1)[-1].strip().upper()
    if not name or not all(c.isascii() and (c.isalnum() or c == "-") for c in name):
        raise VCardError(f"Line {number} has an invalid property name.")
    return name, value


def _card(lines: list[tuple[int, str]], start: int) -> Card:
    version, name, structured = "", "", ""
    card = Card(name="")
    if len(lines) > MAX_PROPERTIES:
        raise VCardError(f"The card starting on line {start} has too many properties.")
    for number, line in lines:
        prop, value = _parse_line(number, line)
        if prop == "BEGIN":
            raise VCardError(f"Line {number}: a card starts inside another card.")
        if prop == "VERSION":
            version = value.strip()
        elif prop == "FN":
            name = name or _unescape(value).strip()
        elif prop == "N":
            parts = [_unescape(p).strip() for p in _split_unescaped(value, ";")]
            structured = " ".join(p for p in (parts[1:2] + parts[:1]) if p)
        elif prop == "EMAIL":
            address = _unescape(value).strip()
            if "@" not in address or any(c.isspace() for c in address) or len(address) > 320:
                raise VCardError(f"Line {number}: {address[:80]!r} is not an e-mail address.")
            if len(card.emails) < MAX_VALUES:
                card.emails.append(address)
        elif prop == "TEL":
            phone = _unescape(value).strip().removeprefix("tel:")[:64]
            if phone and len(card.phones) < MAX_VALUES:
                card.phones.append(phone)
        elif prop == "NOTE":
            card.note = (card.note + "\n" + _unescape(value)).strip()[:4000]
        elif prop == "CATEGORIES":
            for category in _split_unescaped(value, ","):
                category = _unescape(category).strip()[:100]
                if category and len(card.categories) < MAX_VALUES:
                    card.categories.append(category)
        elif prop == "UID":
            card.uid = _unescape(value).strip()[:255]
        elif prop == "KIND":
            card.kind = _unescape(value).strip().lower()[:40] or "individual"
        elif prop == "MEMBER":
            member = _unescape(value).strip()
            if ":" not in member or len(member) > 512:
                raise VCardError(f"Line {number}: MEMBER must be a URI (urn:uuid:… or mailto:…).")
            card.members.append(member)
    if not card.is_group:
        card.members = []
    if version not in VERSIONS:
        raise VCardError(f"The card starting on line {start} has no VERSION 4.0 (or 3.0).")
    card.name = (name or structured)[:200]
    if not card.name:
        raise VCardError(f"The card starting on line {start} has no name (FN).")
    return card


def parse_vcards(data: bytes) -> list[Card]:
    """Every card of a .vcf file; raise :class:`VCardError` when it is not one."""
    if len(data) > MAX_BYTES:
        raise VCardError(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise VCardError("The file is not a vCard (it is not UTF-8 text).") from None
    lines = _unfold(text)
    if not lines or lines[0][1].strip().upper() != "BEGIN:VCARD":
        raise VCardError("The file is not a vCard (it does not start with BEGIN:VCARD).")
    cards: list[Card] = []
    current: list[tuple[int, str]] | None = None
    start = 0
    for number, line in lines:
        upper = line.strip().upper()
        if current is None:
            if upper != "BEGIN:VCARD":
                raise VCardError(f"Line {number} is outside any card.")
            if len(cards) >= MAX_CARDS:
                raise VCardError(f"The file has more than {MAX_CARDS} cards.")
            current, start = [], number
        elif upper == "END:VCARD":
            cards.append(_card(current, start))
            current = None
        else:
            current.append((number, line))
    if current is not None:
        raise VCardError(f"The card starting on line {start} has no END:VCARD.")
    return cards


def _escape(value: str) -> str:
    return (value.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;")
            .replace("\r\n", "\n").replace("\n", "\\n"))


def _fold(line: str) -> str:
    """Fold at 75 octets without splitting a UTF-8 sequence (RFC 6350 §3.2)."""
    out, current, size = [], [], 0
    for ch in line:
        width = len(ch.encode())
        if size + width > FOLD_OCTETS:
            out.append("".join(current))
            current, size = [" "], 1
        current.append(ch)
        size += width
    out.append("".join(current))
    return "\r\n".join(out)


def format_vcard(card: Card) -> str:
    """One vCard 4.0 (RFC 6350 §6), CRLF line ends, folded; a group with its KIND and
    MEMBER lines (§6.1.4, §6.6.5)."""
    lines = ["BEGIN:VCARD", "VERSION:4.0"]
    if card.kind != "individual":
        lines.append(f"KIND:{_escape(card.kind)}")
    lines.append(f"FN:{_escape(card.name)}")
    if card.uid:
        lines.append(f"UID:{_escape(card.uid)}")
    # A MEMBER value is a URI: written as it is, never text-escaped (§6.6.5, §3.4).
    lines += [f"MEMBER:{m}" for m in card.members if card.is_group]
    lines += [f"EMAIL:{_escape(e)}" for e in card.emails]
    lines += [f"TEL;VALUE=text:{_escape(p)}" for p in card.phones]
    if card.note:
        lines.append(f"NOTE:{_escape(card.note)}")
    if card.categories:
        lines.append("CATEGORIES:" + ",".join(_escape(c) for c in card.categories))
    lines.append("END:VCARD")
    return "".join(_fold(line) + "\r\n" for line in lines)
