"""Content-transfer-encodings for IMAP BINARY (RFC 3516): undoing a part's encoding for
``FETCH BINARY[...]`` and ``BINARY.SIZE``, and making a message appended as ``literal8``
storable.

Decoding follows RFC 2045: base64 tolerantly (§6.8, :func:`decode_base64`), quoted-printable
with the rules a strict codec skips (§6.7: trailing white space on a line was added in transport
and is deleted, so ``=`` followed by white space is still a soft line break). An encoding other
than 7bit, 8bit, binary, base64 and quoted-printable cannot be undone: :class:`UnknownEncoding`,
which IMAP answers with ``NO [UNKNOWN-CTE]`` (RFC 3516 §4.2, §4.3).

A message appended as a literal8 may hold NUL octets, which an ordinary literal may not carry
(RFC 3501 §4.3, CHAR8), so ``BODY[]`` could not serve it. RFC 3516 §4.4 lets the server change
the encoding of appended data as long as nothing is lost: :func:`storable` re-encodes each
body part holding NULs in base64 (BINARY then gives the octets back unchanged) and refuses a
message with NULs where no encoding can hold them (its header). Pure: no I/O, no Django.
"""

from __future__ import annotations

import base64
import binascii
import re

from mailcore.mime.headers import decode_base64
from mailcore.mime.structure import iter_parts, scan_structure

IDENTITY = frozenset({"", "7bit", "8bit", "binary"})
KNOWN = IDENTITY | {"base64", "quoted-printable"}
_SPACE_AT_EOL = (b" \n", b"\t\n", b" \r\n", b"\t\r\n")


class UnknownEncoding(ValueError):
    """The part's content-transfer-encoding is none this server can undo."""


class NotStorable(ValueError):
    """A literal8 message with NUL octets outside any body part (its header, a preamble)."""


def _strip_line(line: bytes) -> bytes:
    if line.endswith(b"\r"):
        return line[:-1].rstrip(b" \t") + b"\r"
    return line.rstrip(b" \t")


def decode_quoted_printable(data: bytes) -> bytes:
    """RFC 2045 §6.7 quoted-printable: white space at the end of a line is deleted first (it was
    added in transport, so ``=`` followed by white space is still a soft line break), then the
    stdlib codec undoes soft breaks and ``=XX``. Encoders write such white space as ``=20``,
    so lines are split only when some line ends in white space."""
    for _ in range(4):
        # Transport adds a little white space; C-speed replacements remove it.
        if not any(end in data for end in _SPACE_AT_EOL):
            return binascii.a2b_qp(data.rstrip(b" \t"))
        for end in _SPACE_AT_EOL:
            data = data.replace(end, end[1:])
    return binascii.a2b_qp(b"\n".join([_strip_line(line) for line in data.split(b"\n")]))


def decode_transfer(data: bytes, encoding: str) -> bytes:
    """``data`` with its content-transfer-encoding undone. Raises :class:`UnknownEncoding`."""
    encoding = (encoding or "").lower()
    if encoding in IDENTITY:
        return data
    if encoding == "base64":
        return decode_base64(data)
    if encoding == "quoted-printable":
        return decode_quoted_printable(data)
    raise UnknownEncoding(encoding)


def _base64_header(block: bytes) -> bytes:
    """A part's header block with its Content-Transfer-Encoding made base64."""
    out: list[bytes] = []
    dropping = False
    added = False
    for line in re.split(rb"(?<=\n)", block):
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and out:
            if not dropping:
                out.append(line)
            continue
        if line in (b"\r\n", b"\n") and not added:
            out.append(b"Content-Transfer-Encoding: base64\r\n")
            added = True
            dropping = False
            out.append(line)
            continue
        dropping = line.split(b":", 1)[0].strip().lower() == b"content-transfer-encoding"
        if not dropping:
            out.append(line)
    if not added:
        out.append(b"Content-Transfer-Encoding: base64\r\n\r\n")
    return b"".join(out)


def _base64_body(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return b"\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def storable(raw: bytes) -> bytes:
    """A literal8 message as it is stored: unchanged when it holds no NUL; else each leaf part
    whose body holds NULs under an identity encoding is re-encoded in base64. Raises
    :class:`NotStorable` when NULs remain (in a header, or under another encoding)."""
    if b"\0" not in raw:
        return raw
    structure = scan_structure(raw)
    pieces: list[bytes] = []
    pos = 0
    for part in iter_parts(structure):
        if part["children"] or part["type"] == "multipart":
            continue
        start, body_start, end = part["header_start"], part["body_start"], part["body_end"]
        if start < pos or b"\0" not in raw[body_start:end]:
            continue
        if part["encoding"] not in IDENTITY:
            continue
        pieces.append(raw[pos:start])
        pieces.append(_base64_header(raw[start:body_start]))
        pieces.append(_base64_body(raw[body_start:end]))
        if end == len(raw):
            pieces.append(b"\r\n")
        pos = end
    pieces.append(raw[pos:])
    converted = b"".join(pieces)
    if b"\0" in converted:
        raise NotStorable("NUL octets outside a body part")
    return converted
