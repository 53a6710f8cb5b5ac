"""Building outgoing messages: compose, reply, reply-all and forward.

Messages are built by the stdlib ``email`` package with an explicit 7-bit policy, so every header
is folded and RFC 2047-encoded by the library, filenames get RFC 2231 parameters, bodies are
quoted-printable or base64 as fits, lines end in CRLF, and multipart/mixed appears only when there
are attachments (RFC 5322, RFC 2045-2049, RFC 2231). A CR or LF in any field the user typed is
refused with :class:`ComposeError` before it can become a header (no header injection).
Imports nothing from Django.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy as email_policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from mailcore.mime.addresses import parse_address_list

# 7-bit output: headers RFC 2047-encoded, bodies QP or base64, CRLF line ends, 78-column folding.
OUTGOING = email_policy.default.clone(cte_type="7bit", linesep="\r\n", max_line_length=78)
MAX_SUBJECT = 998
MAX_RECIPIENTS = 100
_LOCAL = re.compile(r"^[^\s@\"(),:;<>\[\]\\]+$")
_LABEL = re.compile(r"^(?!-)[^\s.@\"(),:;<>\[\]\\_]{1,63}(?<!-)$")
_REPLY_PREFIX = re.compile(r"^\s*((re|aw|sv|antw|fwd?|wg|tr|rv)\s*(\[\d+\])?\s*:\s*)+", re.I)


class ComposeError(ValueError):
    """A field the user typed cannot go into a message; the message says which and why."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass
class InlineImage:
    """A picture the HTML body shows with ``<img src="cid:...">`` (RFC 2392)."""

    cid: str
    content_type: str
    data: bytes


@dataclass
class Draft:
    from_addr: str
    from_name: str = ""
    to: list[tuple[str, str]] = field(default_factory=list)
    cc: list[tuple[str, str]] = field(default_factory=list)
    bcc: list[tuple[str, str]] = field(default_factory=list)
    subject: str = ""
    text: str = ""
    html: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    message_id: str = ""
    date: datetime | None = None
    reply_to: list[tuple[str, str]] = field(default_factory=list)
    forwarded: list[bytes] = field(default_factory=list)  # attached as message/rfc822
    inline_images: list[InlineImage] = field(default_factory=list)  # with ``html`` only

    @property
    def envelope_recipients(self) -> list[str]:
        return list(dict.fromkeys(addr.lower() for _, addr in [*self.to, *self.cc, *self.bcc]))


def _no_newlines(field_name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ComposeError(field_name, "line breaks are not allowed here")
    if "\x00" in value:
        raise ComposeError(field_name, "NUL characters are not allowed")
    return value


def check_address(field_name: str, addr: str, shown: str | None = None) -> str:
    """Validate an addr-spec (RFC 5322 §3.4.1, practical subset; UTF-8 allowed per RFC 6532).
    ``shown``: what the error names (the text as the user typed it), by default ``addr``."""
    _no_newlines(field_name, addr)
    shown = addr if shown is None else shown
    local, sep, domain = addr.strip().rpartition("@")
    if not sep or not local or not domain or len(addr) > 254 or len(local) > 64:
        raise ComposeError(field_name, f"{shown!r} is not an email address")
    if not _LOCAL.match(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        raise ComposeError(field_name, f"{shown!r} is not an email address")
    labels = domain.rstrip(".").split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ComposeError(field_name, f"{shown!r} has an invalid domain")
    return f"{local}@{domain.rstrip('.').lower()}"


def _split_pieces(text: str) -> list[str]:
    """Split typed recipients on commas (and semicolons, which people type too) outside double
    quotes, in one linear pass (a look-ahead regex here was quadratic on long input)."""
    pieces, start, quoted, escaped = [], 0, False, False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch in ",;" and not quoted:
            pieces.append(text[start:i])
            start = i + 1
    pieces.append(text[start:])
    return [p for p in pieces if p.strip()]


def _check_piece(field_name: str, piece: str) -> tuple[str, str]:
    """One comma-separated piece as typed: exactly one address, appearing as typed (the reader
    forgives obsolete syntax, "a b@x" reads as "ab@x", but a person typing it made a mistake).
    Errors name the piece as typed, never a reading of it."""
    shown = piece.strip()
    pairs = parse_address_list(piece)
    if len(pairs) != 1 or pairs[0][1].lower() not in piece.lower():
        raise ComposeError(field_name, f"{shown!r} is not an email address")
    name, addr = pairs[0]
    return _no_newlines(field_name, name), check_address(field_name, addr, shown)


def parse_recipients(field_name: str, text: str) -> list[tuple[str, str]]:
    """Parse what a user typed in To/Cc/Bcc ("Ann <a@x.org>, b@y.org") into (name, address)
    pairs, validating each. Raises :class:`ComposeError` naming the first bad address as it
    was typed; the caller keeps the typed text unchanged."""
    _no_newlines(field_name, text)
    if not text.strip():
        return []
    pieces = _split_pieces(text)
    if len(pieces) > MAX_RECIPIENTS:
        raise ComposeError(field_name, f"at most {MAX_RECIPIENTS} recipients")
    return [_check_piece(field_name, piece) for piece in pieces]


def _address_header(pairs: list[tuple[str, str]]) -> list[Address]:
    result = []
    for name, addr in pairs:
        _no_newlines("recipients", name)
        _no_newlines("recipients", addr)
        local, _, domain = addr.rpartition("@")
        result.append(Address(display_name=name, username=local, domain=domain))
    return result


def _split_type(content_type: str) -> tuple[str, str]:
    maintype, _, subtype = (content_type or "").lower().partition("/")
    if not maintype or not subtype or not re.fullmatch(r"[a-z0-9][a-z0-9!#$&^_.+-]*", maintype + subtype):
        return "application", "octet-stream"
    return maintype, subtype


def build_message(draft: Draft, *, hostname: str, include_bcc: bool = False) -> bytes:
    """Build the RFC 5322 bytes of a draft. Raises :class:`ComposeError` for a bad field."""
    from_addr = check_address("from", draft.from_addr)
    subject = _no_newlines("subject", draft.subject)[:MAX_SUBJECT]
    msg = EmailMessage(policy=OUTGOING)
    msg["From"] = _address_header([(_no_newlines("from", draft.from_name), from_addr)])
    for header, pairs in (("To", draft.to), ("Cc", draft.cc), ("Reply-To", draft.reply_to)):
        if pairs:
            msg[header] = _address_header(pairs)
    if include_bcc and draft.bcc:
        msg["Bcc"] = _address_header(draft.bcc)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(draft.date or datetime.now(UTC))
    msg["Message-ID"] = draft.message_id or make_msgid(domain=hostname)
    if draft.in_reply_to:
        msg["In-Reply-To"] = _no_newlines("in-reply-to", draft.in_reply_to)
    if draft.references:
        msg["References"] = " ".join(_no_newlines("references", ref) for ref in draft.references)
    msg["MIME-Version"] = "1.0"

    text = draft.text.replace("\r\n", "\n").replace("\r", "\n")
    msg.set_content(text, charset="utf-8")
    if draft.html is not None:
        msg.add_alternative(draft.html, subtype="html", charset="utf-8")
        # The pictures go with the HTML part in multipart/related (RFC 2387), so readers that
        # show the text part never list them as attachments.
        html_part = msg.get_payload()[-1]
        for image in draft.inline_images:
            maintype, subtype = _split_type(image.content_type)
            html_part.add_related(image.data, maintype=maintype, subtype=subtype,
                                  cid=f"<{_no_newlines('cid', image.cid)}>",
                                  disposition="inline")
    for forwarded in draft.forwarded:
        _attach_message(msg, forwarded)
    for attachment in draft.attachments:
        maintype, subtype = _split_type(attachment.content_type)
        filename = _no_newlines("attachment", attachment.filename).replace("/", "_").replace("\\", "_")
        msg.add_attachment(attachment.data, maintype=maintype, subtype=subtype,
                           filename=filename or "attachment")
    return msg.as_bytes()


def _attach_message(msg: EmailMessage, raw: bytes) -> None:
    """Attach a whole message for "forward as attachment".

    A 7-bit message goes as message/rfc822 (RFC 2046 §5.2.1). One with raw 8-bit bytes cannot:
    message/rfc822 allows no base64 and our output is 7-bit for any relay, so it goes as an
    ``.eml`` file (application/octet-stream, base64), which every client opens as a message."""
    if raw.isascii():
        msg.add_attachment(raw, maintype="message", subtype="rfc822", cte="7bit",
                           disposition="attachment", filename="forwarded.eml")
    else:
        msg.add_attachment(raw, maintype="application", subtype="octet-stream",
                           filename="forwarded.eml")


def strip_reply_prefixes(subject: str) -> str:
    return _REPLY_PREFIX.sub("", subject or "").strip()


def reply_subject(subject: str) -> str:
    """``Re: `` once, however many Re:/AW:/Fwd: the original had piled up."""
    return f"Re: {strip_reply_prefixes(subject)}".strip()


def forward_subject(subject: str) -> str:
    return f"Fwd: {strip_reply_prefixes(subject)}".strip()


def reply_references(message_id: str, references: list[str]) -> list[str]:
    """References of a reply: the original's References then its Message-ID (RFC 5322 §3.6.4)."""
    refs = [ref for ref in references if ref]
    if message_id and message_id not in refs:
        refs.append(message_id)
    # Keep the thread root and the most recent ids so the header stays a sane length.
    return refs if len(refs) <= 20 else [refs[0], *refs[-19:]]


def reply_recipients(
    *,
    from_: list[tuple[str, str]],
    reply_to: list[tuple[str, str]],
    to: list[tuple[str, str]],
    cc: list[tuple[str, str]],
    own_addresses: set[str],
    reply_all: bool,
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """To and Cc for a reply (RFC 5322 §3.6.3): to Reply-To or From; with reply-all, the other
    To and Cc recipients join Cc. The user's own addresses are never included, unless the
    original came from the user (a reply to one's own sent mail goes to its recipients)."""
    own = {addr.lower() for addr in own_addresses}
    primary = reply_to or from_
    if all(addr.lower() in own for _, addr in primary) and primary:
        primary = to
    reply_to_list = _dedupe([p for p in primary if p[1].lower() not in own] or primary)
    if not reply_all:
        return reply_to_list, []
    taken = {addr.lower() for _, addr in reply_to_list} | own
    others = [p for p in [*to, *cc] if p[1].lower() not in taken]
    return reply_to_list, _dedupe(others)


def _dedupe(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: set[str] = set()
    result = []
    for name, addr in pairs:
        if addr.lower() not in seen:
            seen.add(addr.lower())
            result.append((name, addr))
    return result


def quote_text(text: str, author: str, date: datetime | None) -> str:
    """The original's text quoted with "> " under an attribution line."""
    when = date.strftime("%a, %d %b %Y at %H:%M") if date else "an earlier date"
    lines = text.replace("\r\n", "\n").rstrip("\n").split("\n")
    quoted = "\n".join(">" + (" " + line if not line.startswith(">") else line) if line else ">"
                       for line in lines)
    return f"\n\nOn {when}, {author} wrote:\n{quoted}\n"


def forward_text(text: str, *, from_: str, date: datetime | None, subject: str, to: str) -> str:
    """The original inline under a "Forwarded message" block."""
    when = date.strftime("%a, %d %b %Y %H:%M %z") if date else ""
    return (
        "\n\n---------- Forwarded message ----------\n"
        f"From: {from_}\nDate: {when}\nSubject: {subject}\nTo: {to}\n\n{text}"
    )
