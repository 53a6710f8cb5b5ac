"""Delivery-time parsing: the cached fields a stored message keeps, and body decoding.

``parse_message`` reads the raw bytes once and returns what listing, threading, search and IMAP
need (subject, addresses, date, ids, preview, the IMAP ENVELOPE of RFC 3501 §7.4.2 and the
body structure with byte offsets). Bodies are decoded per RFC 2045 §6 (base64,
quoted-printable) and charsets per RFC 2046 §4.1.2, tolerating junk.

Bad mail never raises: problems are recorded in ``defects``. Imports nothing from Django.
"""

from __future__ import annotations

import binascii
import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from mailcore.mime.addresses import build_envelope, envelope_to_pairs
from mailcore.mime.headers import (
    B64_NOT_ALPHABET,
    codec_for,
    decode_base64,
    decode_bytes,
    decode_header_value,
    get_param,
    header_bytes_to_str,
)
from mailcore.mime.structure import iter_parts, scan

# RFC 5322 §2.1.1: a line is at most 998 characters; a longer subject is not worth keeping.
MAX_SUBJECT = 998
PREVIEW_LENGTH = 200
# RFC 5322 §3.6.4 sets no limit; a thread needs its root and its recent ancestors, not 10,000 ids.
MAX_REFERENCES = 100
# Only the start of a part is decoded for the preview: enough raw octets for 200 characters
# even after HTML markup and base64 overhead.
_PREVIEW_RAW_PLAIN = 4_096
_PREVIEW_RAW_HTML = 65_536

_MSG_ID = re.compile(r"<[^<>\s]+>")
_HTML_DROP = re.compile(r"(?is)<(script|style|head|title)\b.*?(?:</\1\s*>|\Z)|<!--.*?(?:-->|\Z)")
_HTML_TAG = re.compile(r"(?s)<[^>]*>?")


@dataclass
class ParsedMessage:
    subject: str
    from_: list[tuple[str, str]]
    sender: list[tuple[str, str]]
    reply_to: list[tuple[str, str]]
    to: list[tuple[str, str]]
    cc: list[tuple[str, str]]
    bcc: list[tuple[str, str]]
    date: datetime | None
    message_id: str
    in_reply_to: str
    references: list[str]
    preview: str
    has_attachments: bool
    envelope: list
    structure: dict
    defects: list[str] = field(default_factory=list)


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse raw message bytes into the fields the store caches. Never raises.

    Sender and Reply-To here are only what the headers say (empty when absent); the ENVELOPE
    applies RFC 3501's default to From.
    """
    structure, headers, defects = scan(raw)
    envelope = build_envelope(headers)
    top = {}
    for name, value in headers:
        key = name.lower()
        if key not in top:
            top[key] = value

    subject_raw = top.get("subject")
    subject = decode_header_value(subject_raw)[:MAX_SUBJECT] if subject_raw is not None else ""
    if "from" not in top:
        defects.append("missing From header")

    return ParsedMessage(
        subject=subject,
        from_=envelope_to_pairs(envelope[2]),
        sender=envelope_to_pairs(envelope[3]) if "sender" in top else [],
        reply_to=envelope_to_pairs(envelope[4]) if "reply-to" in top else [],
        to=envelope_to_pairs(envelope[5]),
        cc=envelope_to_pairs(envelope[6]),
        bcc=envelope_to_pairs(envelope[7]),
        date=_parse_date(top.get("date"), defects),
        message_id=envelope[9].strip() if envelope[9] else "",
        in_reply_to=_first_msg_id(envelope[8]),
        references=_references(top.get("references")),
        preview=_preview(raw, structure),
        has_attachments=_has_attachments(structure),
        envelope=envelope,
        structure=structure,
        defects=defects,
    )


def _parse_date(value: bytes | None, defects: list[str]) -> datetime | None:
    if value is None:
        return None
    try:
        date = parsedate_to_datetime(header_bytes_to_str(value).strip())
    except Exception:  # email.utils raises ValueError, TypeError, OverflowError
        defects.append("unparseable Date header")
        return None
    if date.tzinfo is None:
        date = date.replace(tzinfo=UTC)
    return date


def _first_msg_id(value: str | None) -> str:
    if not value:
        return ""
    m = _MSG_ID.search(value)
    return m.group(0) if m else ""


def _references(value: bytes | None) -> list[str]:
    if value is None:
        return []
    ids = _MSG_ID.findall(header_bytes_to_str(value))
    if len(ids) > MAX_REFERENCES:
        # Keep the thread root and the nearest ancestors (RFC 5322 §3.6.4 order).
        ids = ids[:1] + ids[-(MAX_REFERENCES - 1) :]
    return ids


def part_filename(part: dict) -> str | None:
    """The part's file name: Content-Disposition filename, else Content-Type name, decoded."""
    name = None
    disposition = part.get("disposition")
    if disposition:
        name = get_param(disposition[1], "filename")
    if not name:
        name = get_param(part.get("params") or [], "name")
    if not name:
        return None
    # Many clients put RFC 2047 words in parameters, against RFC 2047 §5.
    return decode_header_value(name) if "=?" in name else name


def _has_attachments(structure: dict) -> bool:
    for part in iter_parts(structure):
        disposition = part["disposition"]
        if disposition and disposition[0] == "attachment":
            return True
        maintype = part["type"]
        if maintype == "message" and part["children"] and part is not structure:
            return True
        if maintype not in ("text", "multipart", "message") and part_filename(part):
            return True
    return False


# --- body decoding ----------------------------------------------------------------------------


def _decode_qp(data: bytes) -> bytes:
    try:
        return binascii.a2b_qp(data)
    except (binascii.Error, ValueError):
        return data


def decode_body(data: bytes, encoding: str) -> bytes:
    """Undo a Content-Transfer-Encoding (RFC 2045 §6); unknown encodings pass through."""
    if encoding == "base64":
        return decode_base64(data)
    if encoding == "quoted-printable":
        return _decode_qp(data)
    return data


def decode_part_body(raw: bytes, part: dict) -> bytes:
    """The part's body with base64/quoted-printable undone; tolerant of junk, never raises."""
    return decode_body(raw[part["body_start"] : part["body_end"]], part.get("encoding") or "7bit")


def part_charset(part: dict) -> str | None:
    return get_param(part.get("params") or [], "charset")


def part_text(raw: bytes, part: dict) -> str:
    """The part's body decoded to str per its CTE and charset (unknown: UTF-8, then latin-1)."""
    return decode_bytes(decode_part_body(raw, part), part_charset(part))


def html_to_text(markup: str) -> str:
    """Rough HTML to text for previews and search: drop scripts, styles and tags, unescape."""
    markup = _HTML_DROP.sub(" ", markup)
    markup = _HTML_TAG.sub(" ", markup)
    return html.unescape(markup)


def _preview_source(structure: dict) -> tuple[dict | None, dict | None]:
    """First inline text/plain and text/html leaves, not descending into attached messages."""
    plain = html_part = None
    stack = [structure]
    while stack:
        part = stack.pop()
        maintype = part["type"]
        if maintype == "multipart":
            stack.extend(reversed(part["children"]))
            continue
        if maintype != "text":
            continue
        disposition = part["disposition"]
        if disposition and disposition[0] == "attachment":
            continue
        subtype = part["subtype"]
        if subtype == "plain" and plain is None:
            plain = part
            break
        if subtype == "html" and html_part is None:
            html_part = part
    return plain, html_part


def _decode_prefix(data: bytes, charset: str | None) -> str:
    """Decode the first bytes of a longer text, ignoring a character cut at the end."""
    codec = codec_for(charset) if charset else None
    for name in (codec, "utf-8"):
        if name is None:
            continue
        try:
            return data.decode(name).replace("\x00", "\ufffd")
        except UnicodeDecodeError as exc:
            if exc.start >= len(data) - 8:
                try:
                    return data[: exc.start].decode(name).replace("\x00", "\ufffd")
                except Exception:
                    pass
        except Exception:
            pass
    return decode_bytes(data, charset)


def _preview(raw: bytes, structure: dict) -> str:
    plain, html_part = _preview_source(structure)
    part = plain or html_part
    if part is None:
        return ""
    limit = _PREVIEW_RAW_PLAIN if part is plain else _PREVIEW_RAW_HTML
    start = part["body_start"]
    end = part["body_end"]
    encoding = part["encoding"]
    if end - start <= limit:
        text = decode_bytes(decode_body(raw[start:end], encoding), part_charset(part))
    else:
        data = raw[start : start + limit]
        if encoding == "base64":
            data = data.translate(None, B64_NOT_ALPHABET)
            data = data[: len(data) - len(data) % 4]
        text = _decode_prefix(decode_body(data, encoding), part_charset(part))
    if part is not plain:
        text = html_to_text(text)
    text = " ".join(text[: PREVIEW_LENGTH * 8].split())
    return text[:PREVIEW_LENGTH].rstrip()
