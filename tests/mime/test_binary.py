"""Transfer decoding for IMAP BINARY (RFC 3516) and the literal8 store conversion: RFC 2045
quoted-printable with transport padding, base64, unknown encodings, and messages with NULs."""

import base64

import pytest

from mailcore.mime.binary import (
    NotStorable,
    UnknownEncoding,
    decode_quoted_printable,
    decode_transfer,
    storable,
)
from mailcore.mime.structure import find_part, scan_structure


def test_quoted_printable_deletes_transport_white_space_and_keeps_bad_escapes():
    # RFC 2045 §6.7: trailing white space is deleted, so "= \t" is still a soft line break.
    encoded = b"hello  \r\nfoo\t \t= \r\n=62\r\nfoo = \t\r\nbar\r\nx=3d=ZZ=\r\n"
    assert decode_quoted_printable(encoded) == b"hello\r\nfoo\t \tb\r\nfoo bar\r\nx==ZZ"
    assert decode_quoted_printable(b"a=\nb=\r\nc\n") == b"abc\n"
    # Many spaces on many lines: still the right answer (the slow path).
    assert decode_quoted_printable(b"a" + b" " * 50 + b"\r\n" + b"b \t \t \t\r\n") == b"a\r\nb\r\n"


def test_transfer_decoding_by_name_and_unknown_encodings():
    assert decode_transfer(b"aGVs\r\nbG8=", "BASE64") == b"hello"
    assert decode_transfer(b"\x00raw", "binary") == b"\x00raw"
    with pytest.raises(UnknownEncoding):
        decode_transfer(b"begin 644 x", "x-uuencode")


def test_storable_reencodes_only_parts_with_nuls_and_refuses_nuls_in_headers():
    clean = b"Subject: a\r\n\r\nno nul here\r\n"
    assert storable(clean) is clean
    raw = (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\ntext\r\n--b\r\n"
           b"Content-Type: application/x\r\nContent-Transfer-Encoding: 8bit\r\n"
           b" (folded comment)\r\n\r\n\x00\x01\xff\r\n--b--\r\n")
    stored = storable(raw)
    assert b"\x00" not in stored and b"(folded comment)" not in stored
    part = find_part(scan_structure(stored), [2])
    assert part["encoding"] == "base64"
    body = stored[part["body_start"] : part["body_end"]]
    assert base64.b64decode(body) == b"\x00\x01\xff"
    assert stored.startswith(raw[: raw.index(b"--b\r\nContent-Type: application")])
    with pytest.raises(NotStorable):
        storable(b"Subject: a\x00\r\n\r\nbody")
    with pytest.raises(NotStorable):  # base64 cannot hold a NUL as it is written
        storable(b"Content-Transfer-Encoding: base64\r\n\r\nAA\x00AA\r\n")
