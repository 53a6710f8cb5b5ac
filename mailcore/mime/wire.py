"""Messages in the form line protocols transmit them, whatever the stored bytes hold.

CRLF line ends (RFC 5322 §2.1, RFC 5321 §2.3.8: no bare CR or LF on the SMTP wire); the
dot-terminated multi-line blocks of POP3 (RFC 1939 §3) and SMTP DATA (RFC 5321 §4.5.2) with
byte-stuffed leading dots; at most 998 octets a line (RFC 5321 §4.5.3.1.6, RFC 5322 §2.1.1),
long header lines folded (RFC 5322 §2.2.3); 8BITMIME (RFC 6152) and SMTPUTF8 (RFC 6531/6532)
needs, and the 7-bit downgrade of an 8-bit body for a server without 8BITMIME (RFC 6152 §3:
convert or bounce). Imports nothing from Django."""

import re
from email import policy
from email.generator import BytesGenerator
from email.parser import BytesParser
from io import BytesIO

from mailcore.mime.headers import find_header_end

_BARE_LF = re.compile(rb"(?<!\r)\n")


def to_crlf(raw: bytes) -> bytes:
    """The message with every bare LF turned into CRLF and its last line ended by CRLF.

    Bare CRs are left as they are: they end no line. An empty message stays empty."""
    if raw.count(b"\n") != raw.count(b"\r\n"):
        raw = _BARE_LF.sub(b"\r\n", raw)
    if raw and not raw.endswith(b"\r\n"):
        raw += b"\r\n"
    return raw


def crlf_size(raw: bytes) -> int:
    """``len(to_crlf(raw))`` without building it."""
    if not raw:
        return 0
    size = len(raw) + raw.count(b"\n") - raw.count(b"\r\n")
    if not raw.endswith(b"\n"):
        size += 2
    return size


def dot_stuff(data: bytes) -> bytes:
    """Double the ``.`` that starts a line, for a dot-terminated multi-line block. ``data`` must
    have CRLF line ends (see :func:`to_crlf`), so every LF starts a line."""
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\n.", b"\n..")


MAX_LINE = 998  # octets before CRLF (RFC 5321 §4.5.3.1.6, RFC 5322 §2.1.1)
_LINE_END = re.compile(rb"\r\n|\r|\n")
_EIGHT_BIT = re.compile(rb"[\x80-\xff]")


def normalize_line_ends(raw: bytes) -> bytes:
    """Every CRLF, bare CR and bare LF becomes CRLF; the result ends with CRLF."""
    out = _LINE_END.sub(b"\r\n", raw)
    if not out.endswith(b"\r\n"):
        out += b"\r\n"
    return out


def _split_long(line: bytes, header: bool) -> list[bytes]:
    """Cut a line longer than MAX_LINE. In the header, fold at whitespace where possible (a
    continuation starts with a space, RFC 5322 §2.2.3); elsewhere (and when no whitespace helps)
    insert CRLF + space, as Postfix does, which keeps the message parseable."""
    pieces = []
    while len(line) > MAX_LINE:
        cut = -1
        if header:
            cut = max(line.rfind(b" ", 1, MAX_LINE), line.rfind(b"\t", 1, MAX_LINE))
        if cut <= 0:
            cut = MAX_LINE - 1
        pieces.append(line[:cut])
        rest = line[cut:]
        line = rest if rest[:1] in (b" ", b"\t") else b" " + rest
    pieces.append(line)
    return pieces


def clean_message(raw: bytes) -> bytes:
    """The message with CRLF line ends only and no line over 998 octets (not yet dot-stuffed:
    this is the form that is DKIM-signed, RFC 6376 §5.3)."""
    text = normalize_line_ends(raw)
    if not any(len(line) > MAX_LINE for line in text.split(b"\r\n")):
        return text
    header_end, _ = find_header_end(text, 0, len(text))
    out = []
    pos = 0
    for line in text[:-2].split(b"\r\n"):
        in_header = pos < header_end
        pos += len(line) + 2
        if len(line) > MAX_LINE:
            out.extend(_split_long(line, header=in_header))
        else:
            out.append(line)
    return b"\r\n".join(out) + b"\r\n"


def data_payload(clean: bytes) -> bytes:
    """The DATA payload of a cleaned message: leading dots doubled and the ``.`` terminator
    appended (RFC 5321 §4.5.2). Nothing in the message can end DATA early."""
    return dot_stuff(clean) + b".\r\n"


def has_eight_bit(data: bytes) -> bool:
    return _EIGHT_BIT.search(data) is not None


def header_has_eight_bit(raw: bytes) -> bool:
    """Non-ASCII in the header block: the message needs SMTPUTF8 (RFC 6532 §3)."""
    header_end, _ = find_header_end(raw, 0, len(raw))
    return has_eight_bit(raw[:header_end])


def downgrade_to_7bit(raw: bytes) -> bytes:
    """Re-encode 8-bit body parts as quoted-printable or base64 for a server without 8BITMIME
    (RFC 6152 §3). The header block must already be ASCII (else SMTPUTF8 is needed instead)."""
    message = BytesParser(policy=policy.compat32).parsebytes(raw)
    out = BytesIO()
    BytesGenerator(out, mangle_from_=False, policy=policy.compat32.clone(cte_type="7bit",
                                                                         linesep="\r\n")
                   ).flatten(message)
    result = out.getvalue()
    if has_eight_bit(result):
        # Parts the generator could not re-encode (no charset to go by): base64 them whole.
        message = BytesParser(policy=policy.compat32).parsebytes(raw)
        for part in message.walk():
            if part.is_multipart():
                continue
            payload = part.get_payload(decode=True) or b""
            if has_eight_bit(payload):
                del part["Content-Transfer-Encoding"]
                part.set_payload(payload)
                from email import encoders

                encoders.encode_base64(part)
        out = BytesIO()
        BytesGenerator(out, mangle_from_=False,
                       policy=policy.compat32.clone(linesep="\r\n")).flatten(message)
        result = out.getvalue()
    return result
