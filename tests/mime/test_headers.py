"""Header splitting, RFC 2047 and RFC 2231 decoding (mailcore.mime.headers)."""


import pytest

from mailcore.mime.headers import (
    decode_bytes,
    decode_header_value,
    parse_content_type,
    split_header_block,
)


def test_header_block_is_split_unfolded_with_the_body_offset():
    raw = b"Subject: one\r\n two\r\n\tthree\r\nX-Empty:\r\nTo:  a@b \r\n\r\nbody"
    headers, body = split_header_block(raw)
    assert headers == [("Subject", b"one two\tthree"), ("X-Empty", b""), ("To", b"a@b")]
    assert raw[body:] == b"body"


def test_header_block_tolerates_bare_lf_and_a_missing_blank_line():
    assert split_header_block(b"A: 1\nB: 2\n\nbody") == ([("A", b"1"), ("B", b"2")], 11)
    raw = b"A: 1\r\nB: 2"
    assert split_header_block(raw) == ([("A", b"1"), ("B", b"2")], len(raw))
    assert split_header_block(b"") == ([], 0)
    assert split_header_block(b"\r\nbody") == ([], 2)


def test_header_lines_without_a_colon_are_skipped_as_defects():
    defects = []
    headers, _ = split_header_block(
        b"A: 1\r\nno colon here\r\nBad Name: x\r\n: v\r\nB: 2\r\n\r\n", defects
    )
    assert headers == [("A", b"1"), ("B", b"2")]
    assert len(defects) == 3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain text", "plain text"),
        ("=?utf-8?q?caf=C3=A9?=", "café"),
        ("=?UTF-8?B?Y2Fmw6k=?=", "café"),
        ("=?iso-8859-1?q?caf=E9_cr=E8me?=", "café crème"),
        # RFC 2047 §6.2: whitespace between adjacent encoded-words is dropped.
        ("=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),
        ("=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab"),
        ("=?utf-8?q?a?= and =?utf-8?q?b?=", "a and b"),
        ("Re: =?utf-8?q?x?= tail", "Re: x tail"),
        # A character split across two words (same charset) survives.
        ("=?utf-8?b?w6k=?= =?utf-8?b?w6k=?=", "éé"),
        ("=?utf-8?q?=C3?= =?utf-8?q?=A9?=", "é"),
        ("=?utf-8*en?q?lang?=", "lang"),
        ("=?x-unknown?q?caf=C3=A9?=", "café"),
        ("=?x-unknown?q?caf=E9?=", "café"),
        ("=?utf-8?b?Y2Fmw6k?=", "café"),
        ("=?utf-8?b?!!Y2Fm***w6k=?=", "café"),
        ("=?utf-8?x?abc?=", "=?utf-8?x?abc?="),
        ("=?unicode_escape?q?=5Cx41?=", "\\x41"),
        ("=?gb2312?b?1tDOxA==?=", "中文"),
        (b"caf\xc3\xa9", "café"),
        (b"caf\xe9", "café"),
        (b"nul\x00byte", "nul\ufffdbyte"),
    ],
)
def test_header_values_are_decoded(value, expected):
    assert decode_header_value(value) == expected


def test_decode_bytes_falls_back_and_never_raises():
    assert decode_bytes(b"caf\xc3\xa9", "us-ascii") == "café"
    assert decode_bytes(b"caf\xe9", "us-ascii") == "café"
    assert decode_bytes(b"\xff\xfe", "no-such-charset") == "ÿþ"
    assert decode_bytes(b"x\x9dy", "windows-1252") == "x\ufffdy"
    assert decode_bytes(b"+AGEAYgBj-", "utf-7") == "abc"
    assert decode_bytes(b"\x80abc", "utf-16") is not None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text/plain", ("text", "plain", [])),
        ('TEXT/Plain; CHARSET="utf-8"', ("text", "plain", [["charset", "utf-8"]])),
        (
            "text/plain (comment); charset=us-ascii (c)",
            ("text", "plain", [["charset", "us-ascii"]]),
        ),
        (
            "multipart/mixed; boundary=----=_Part_1_2.3",
            ("multipart", "mixed", [["boundary", "----=_Part_1_2.3"]]),
        ),
        (
            "application/x; name*=utf-8''r%C3%A9sum%C3%A9.pdf",
            ("application", "x", [["name", "résumé.pdf"]]),
        ),
        (
            "application/x; name*0*=iso-8859-1'fr'caf%E9; name*1=\" cr\"; name*2*=%E8me",
            ("application", "x", [["name", "café crème"]]),
        ),
        (
            # Segments out of order are put back in order (RFC 2231 §3).
            "application/x; name*1=b; name*0=a; name*2=c",
            ("application", "x", [["name", "abc"]]),
        ),
        (
            "application/x; name*0*=x-bogus'xx'caf%C3%A9; name*1*=%ZZ",
            ("application", "x", [["name", "café%ZZ"]]),
        ),
        (
            "application/x; name*=''plain",
            ("application", "x", [["name", "plain"]]),
        ),
        ("garbage", ("text", "plain", [])),
        ('text/plain; charset="never closed', ("text", "plain", [["charset", "never closed"]])),
        ("text/plain; ; novalue; =x; a=1; a=2", ("text", "plain", [["a", "1"]])),
    ],
)
def test_content_type_parameters_are_decoded(value, expected):
    maintype, subtype, params, _valid = parse_content_type(value)
    assert (maintype, subtype, params) == expected
