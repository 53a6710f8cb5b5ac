"""Header-level helpers: split a header block, decode header text, parse parameters.

Implements the tolerant reading of RFC 5322 §2.2 (header fields, folding), RFC 2047 (encoded-words),
RFC 2045 §5.1 / RFC 2183 (Content-Type and Content-Disposition parameters) with RFC 2231
(parameter continuations and charsets). Addresses and the IMAP envelope are in
:mod:`mailcore.mime.addresses`.

Nothing here raises on bad input: broken input degrades to a best-effort value and, where the
caller passes a list, a defect string. Imports nothing from Django.
"""

from __future__ import annotations

import binascii
import codecs
import functools
import re
from urllib.parse import unquote_to_bytes

# RFC 5322 §2.2: field-name = 1*ftext, ftext = %d33-57 / %d59-126.
_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+")
_END_OF_HEADER = re.compile(rb"\n\r?\n")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_STRAY_NEWLINE = re.compile(r"[\r\n]+")
# RFC 2047 §2; the charset may carry an RFC 2231 §5 "*language" suffix.
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*?)\?=")
B64_NOT_ALPHABET = bytes(
    set(range(256)) - set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
)
_MIME_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+\Z")

# Codecs that are "text encodings" to Python but must never be applied to mail: they interpret
# escapes, raise on every input, or are not character sets at all.
_REFUSED_CODECS = frozenset(
    {"unicode_escape", "raw_unicode_escape", "idna", "punycode", "undefined", "mbcs", "oem"}
)
# Labels mail clients write for charsets Python calls something else, or supersets that every
# real-world decoder uses instead (WHATWG Encoding Standard practice).
_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "us-ascii": "ascii",
    "ansi_x3.4-1968": "ascii",
    "iso-8859-9": "cp1254",
    "tis-620": "cp874",
    "x-sjis": "shift_jis",
    "shift-jis": "shift_jis",
    "x-mac-roman": "mac_roman",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
}


@functools.lru_cache(maxsize=256)
def codec_for(charset: str) -> str | None:
    """A usable Python codec name for a MIME charset label, or None if unknown or unsafe."""
    label = charset.strip().strip("\"'").lower()
    label = _CHARSET_ALIASES.get(label, label)
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return None
    if (
        not getattr(info, "_is_text_encoding", True)
        or info.name.replace("-", "_") in _REFUSED_CODECS
    ):
        return None
    return info.name


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Decode bytes in a declared charset; fall back to UTF-8, then latin-1. Never raises.

    NUL characters become U+FFFD because neither PostgreSQL text nor jsonb can store them.
    """
    codec = codec_for(charset) if charset else None
    text = None
    if codec is not None:
        try:
            text = data.decode(codec)
        except Exception:
            text = None
    if text is None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            fallback = codec if codec not in (None, "ascii", "utf-8") else "cp1252"
            try:
                text = data.decode(fallback, "replace")
            except Exception:
                text = data.decode("latin-1")
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return text


def header_bytes_to_str(value: bytes) -> str:
    """Raw header bytes as str: UTF-8 when valid (RFC 6532), else latin-1; NULs replaced."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = value.decode("latin-1")
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return text


def header_bytes_to_raw_str(value: bytes) -> str:
    """Raw header bytes as str for IMAP ENVELOPE: UTF-8 with replacement, NULs replaced."""
    text = value.decode("utf-8", "replace")
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return text


def unfold(value: str) -> str:
    """RFC 5322 §2.2.3 unfolding: drop CRLF before WSP; stray CR/LF become a space."""
    if "\n" in value or "\r" in value:
        value = _FOLD.sub("", value)
        value = _STRAY_NEWLINE.sub(" ", value)
    return value


# --- header block -----------------------------------------------------------------------------


def find_header_end(raw: bytes, start: int, end: int) -> tuple[int, int]:
    """Return (header_end, body_start) for the header block starting at ``start``.

    ``raw[start:header_end]`` holds the header lines (each with its line end), and the body
    starts after the empty line. With no empty line before ``end`` the whole range is header.
    """
    if start >= end:
        return start, start
    first = raw[start]
    if first == 0x0A:
        return start, start + 1
    if first == 0x0D and start + 1 < end and raw[start + 1] == 0x0A:
        return start, start + 2
    m = _END_OF_HEADER.search(raw, start, end)
    if m is None:
        return end, end
    return m.start() + 1, m.end()


def split_header_lines(block: bytes, defects: list[str] | None = None) -> list[tuple[str, bytes]]:
    """Split a header block into (name, unfolded raw value) pairs, in order.

    Lines without a colon, with an invalid field name, or continuation lines with nothing to
    continue are skipped (and reported as defects). Values have their folding line breaks
    removed and surrounding whitespace stripped, but are otherwise the bytes as received.
    """
    headers: list[tuple[str, bytes]] = []
    name: str | None = None
    parts: list[bytes] = []
    for line in block.split(b"\n"):
        if line[-1:] == b"\r":
            line = line[:-1]
        if not line:
            continue
        first = line[0]
        if first == 0x20 or first == 0x09:
            if name is not None:
                parts.append(line)
            elif defects is not None:
                defects.append("header continuation line without a header")
            continue
        if name is not None:
            headers.append((name, (parts[0] if len(parts) == 1 else b"".join(parts)).strip(b" \t")))
            name = None
        colon = line.find(b":")
        field = line[:colon].rstrip(b" \t") if colon > 0 else b""
        if not field or _FIELD_NAME.fullmatch(field) is None:
            if defects is not None:
                if line.startswith(b"From ") and not headers:
                    defects.append("mbox From_ line in header")
                else:
                    defects.append("header line without a valid field name")
            continue
        name = field.decode("ascii")
        parts = [line[colon + 1 :]]
    if name is not None:
        headers.append((name, (parts[0] if len(parts) == 1 else b"".join(parts)).strip(b" \t")))
    return headers


def split_header_block(
    raw: bytes, defects: list[str] | None = None
) -> tuple[list[tuple[str, bytes]], int]:
    """Split the header block at the start of ``raw``; return (headers, body offset).

    Headers are (field name as written, unfolded raw value bytes). Tolerates bare LF line
    ends, a block without a terminating empty line (then the body offset is ``len(raw)``),
    and lines without a colon (skipped; a defect is appended to ``defects`` if given).
    """
    header_end, body_start = find_header_end(raw, 0, len(raw))
    if body_start == len(raw) and header_end == body_start and raw and defects is not None:
        defects.append("header block not terminated by an empty line")
    return split_header_lines(raw[:header_end], defects), body_start


def decode_base64(data: bytes) -> bytes:
    """Tolerant base64 (RFC 2045 §6.8): skip non-alphabet octets, repair padding, never raise.

    Padding inside the data (a broken encoder, or concatenated encodings) is dropped and the
    rest decoded as one stream; a dangling single character is discarded.
    """
    data = data.translate(None, B64_NOT_ALPHABET)
    if b"=" in data:
        data = data.replace(b"=", b"")
    if len(data) % 4 == 1:
        data = data[:-1]
    try:
        return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        return b""


# --- RFC 2047 ---------------------------------------------------------------------------------


def _decode_encoded_word(charset: str, encoding: str, text: str) -> tuple[str, bytes] | None:
    charset = charset.partition("*")[0]
    data = text.encode("utf-8", "surrogateescape")
    try:
        if encoding in "bB":
            data = decode_base64(data)
        else:
            data = binascii.a2b_qp(data, header=True)
    except (binascii.Error, ValueError):
        return None
    return charset, data


def decode_header_value(value: str | bytes) -> str:
    """Decode an unstructured header value for display: RFC 2047 words, 8-bit bytes, folding.

    Adjacent encoded-words are joined without the whitespace between them (RFC 2047 §6.2), and
    adjacent words in one charset are decoded together so a character split across words
    survives. Unknown charsets and broken base64 degrade to a best-effort string; never raises.
    """
    if isinstance(value, bytes):
        value = header_bytes_to_str(value)
    elif "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    value = unfold(value)
    if "=?" not in value:
        return value.strip()
    out: list[str] = []
    pending_charset: str | None = None
    pending: list[bytes] = []
    pos = 0
    last_was_word = False
    for m in _ENCODED_WORD.finditer(value):
        between = value[pos : m.start()]
        word = _decode_encoded_word(m.group(1), m.group(2), m.group(3))
        if word is None:
            # Keep an undecodable word as the literal text it is.
            if pending:
                out.append(decode_bytes(b"".join(pending), pending_charset))
                pending = []
            out.append(between + m.group(0))
            last_was_word = False
            pos = m.end()
            continue
        charset, data = word
        if not (last_was_word and (not between or between.isspace())):
            if pending:
                out.append(decode_bytes(b"".join(pending), pending_charset))
                pending = []
            out.append(between)
        elif pending and charset.lower() != (pending_charset or "").lower():
            out.append(decode_bytes(b"".join(pending), pending_charset))
            pending = []
        pending_charset = charset
        pending.append(data)
        last_was_word = True
        pos = m.end()
    if pending:
        out.append(decode_bytes(b"".join(pending), pending_charset))
    out.append(value[pos:])
    return "".join(out).strip()


# --- Content-Type style parameters (RFC 2045 §5.1, RFC 2183, RFC 2231) --------------------------


def _strip_comments(text: str) -> str:
    """Remove RFC 5322 comments outside quoted strings (nesting allowed, unclosed tolerated)."""
    out = []
    depth = 0
    quoted = False
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if quoted:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                quoted = False
        elif depth:
            if c == "\\":
                i += 1
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
        elif c == "(":
            depth = 1
        else:
            out.append(c)
            if c == '"':
                quoted = True
        i += 1
    return "".join(out)



def read_quoted(text: str, i: int) -> tuple[str, int]:
    """The quoted string (RFC 5322 §3.2.4) whose first character after the opening quote is at
    ``i``: its text with quoted pairs undone, and the index after the closing quote (the end of
    ``text`` when the quote is never closed)."""
    n = len(text)
    chars = []
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            chars.append(text[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(chars), i + 1
        chars.append(c)
        i += 1
    return "".join(chars), i

def _raw_params(text: str) -> list[tuple[str, str]]:
    """Split ``; name=value`` parameters; quoted values are unquoted. Tolerant of garbage."""
    params = []
    n = len(text)
    i = 0
    while i < n:
        semi = text.find(";", i)
        eq = text.find("=", i)
        if eq < 0 or (0 <= semi < eq):
            # A parameter with no value: skip it.
            if semi < 0:
                break
            i = semi + 1
            continue
        name = text[i:eq].strip().lower()
        j = eq + 1
        while j < n and text[j] in " \t":
            j += 1
        if j < n and text[j] == '"':
            value, j = read_quoted(text, j + 1)
            semi = text.find(";", j)
        else:
            semi = text.find(";", j)
            value = (text[j:] if semi < 0 else text[j:semi]).strip()
        if name:
            params.append((name, value))
        if semi < 0:
            break
        i = semi + 1
    return params


def _collapse_rfc2231(raw: list[tuple[str, str]]) -> list[list[str]]:
    """Join RFC 2231 continuations and decode charset'lang'%XX values into str."""
    order: list[str] = []
    plain: dict[str, str] = {}
    segments: dict[str, list[tuple[int, bool, str]]] = {}
    for name, value in raw:
        base, star, rest = name.partition("*")
        if star:
            extended = rest.endswith("*") or rest == ""
            number = rest[:-1] if rest.endswith("*") else rest
            if number == "":
                index = 0
            elif number.isdigit() and len(number) < 6:
                index = int(number)
            else:
                base, extended, index = name, False, -1
            if index >= 0:
                if base not in segments:
                    segments[base] = []
                    if base not in plain:
                        order.append(base)
                segments[base].append((index, extended, value))
                continue
        if base not in plain:
            plain[base] = value
            if base not in segments:
                order.append(base)
    result = []
    for base in order:
        segs = segments.get(base)
        if not segs:
            result.append([base, plain[base]])
            continue
        segs.sort(key=lambda s: s[0])
        charset = None
        chunks: list[bytes] = []
        seen = set()
        for k, (index, extended, value) in enumerate(segs):
            if index in seen:
                continue
            seen.add(index)
            if extended:
                if k == 0 and value.count("'") >= 2:
                    charset, _lang, value = value.split("'", 2)
                chunks.append(unquote_to_bytes(value))
            else:
                chunks.append(value.encode("utf-8", "surrogateescape"))
        result.append([base, decode_bytes(b"".join(chunks), charset or None)])
    return result


def parse_params(value: str) -> list[list[str]]:
    """Parameters after the first ``;`` of a structured MIME header, RFC 2231-decoded."""
    if "(" in value:
        value = _strip_comments(value)
    semi = value.find(";")
    if semi < 0:
        return []
    raw = _raw_params(value[semi + 1 :])
    if not raw:
        return []
    if any("*" in name for name, _ in raw):
        return _collapse_rfc2231(raw)
    seen = set()
    result = []
    for name, v in raw:
        if name not in seen:
            seen.add(name)
            result.append([name, v])
    return result


def parse_content_type(
    value: str, default: tuple[str, str] = ("text", "plain")
) -> tuple[str, str, list[list[str]], bool]:
    """Parse a Content-Type value into (type, subtype, params, valid).

    An unparseable type falls back to ``default`` (RFC 2045 §5.2) with ``valid`` False.
    """
    if "(" in value:
        value = _strip_comments(value)
    main = value.partition(";")[0].strip().lower()
    maintype, slash, subtype = main.partition("/")
    maintype = maintype.strip()
    subtype = subtype.strip()
    params = parse_params(value)
    if not slash or _MIME_TOKEN.match(maintype) is None or _MIME_TOKEN.match(subtype) is None:
        return default[0], default[1], params, False
    return maintype, subtype, params, True


def parse_disposition(value: str) -> list:
    """Parse Content-Disposition (RFC 2183) into [type, params], type lowercased."""
    if "(" in value:
        value = _strip_comments(value)
    kind = value.partition(";")[0].strip().lower()
    return [kind, parse_params(value)]


def get_param(params: list[list[str]], name: str) -> str | None:
    for key, value in params:
        if key == name:
            return value
    return None
