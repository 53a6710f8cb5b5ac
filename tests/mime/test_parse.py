"""parse_message: cached fields, the IMAP ENVELOPE, previews, attachments and body decoding."""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from mailcore.mime.parse import (
    decode_part_body,
    parse_message,
    part_filename,
    part_text,
)
from mailcore.mime.structure import find_part


def make_alternative(size: int = 5_000) -> bytes:
    """A typical multipart/alternative message of about ``size`` octets."""
    head = (
        b"Return-Path: <joao@example.com>\r\n"
        b"Received: from mx.example.com (mx.example.com [192.0.2.1])\r\n"
        b"\tby mail.example.test with ESMTPS id 4A1B2C3D\r\n"
        b"\tfor <maria@example.test>; Mon, 3 Nov 2025 10:11:12 +0000\r\n"
        b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=sel;\r\n"
        b"\th=from:to:subject:date:message-id; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n"
        b"\tb=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOpQrStUvWxYz0123456789\r\n"
        b"From: =?UTF-8?Q?Jo=C3=A3o_Silva?= <joao@example.com>\r\n"
        b'To: Maria <maria@example.test>, "Doe, John" <john@example.test>\r\n'
        b"Cc: team@example.test\r\n"
        b"Subject: =?UTF-8?Q?Re=3A_Reuni=C3=A3o_de_or=C3=A7amento?=\r\n"
        b"Date: Mon, 3 Nov 2025 10:11:12 +0100\r\n"
        b"Message-ID: <abc123.456@example.com>\r\n"
        b"In-Reply-To: <prev.1@example.test>\r\n"
        b"References: <root.0@example.test> <prev.1@example.test>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/alternative; boundary="000000000000a1b2c3d4e5f6"\r\n\r\n'
    )
    line = b"Thanks for the notes from yesterday's meeting. Let's move the review to Thursday.\r\n"
    html = b"<p>Thanks for the notes from <b>yesterday's</b> meeting.</p>\r\n"
    room = size - len(head) - 400
    text = b"Hello Maria,\r\n\r\n" + line * (room // 2 // len(line))
    markup = (
        b"<html><body><p>Hello Maria,</p>\r\n" + html * (room // 2 // len(html)) + b"</body></html>"
    )
    return (
        head
        + b"--000000000000a1b2c3d4e5f6\r\n"
        + b'Content-Type: text/plain; charset="UTF-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
        + text
        + b"\r\n--000000000000a1b2c3d4e5f6\r\n"
        + b'Content-Type: text/html; charset="UTF-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
        + markup
        + b"\r\n--000000000000a1b2c3d4e5f6--\r\n"
    )


def test_a_typical_message_yields_its_cached_fields():
    parsed = parse_message(make_alternative())
    assert parsed.subject == "Re: Reunião de orçamento"
    assert parsed.from_ == [("João Silva", "joao@example.com")]
    assert parsed.to == [("Maria", "maria@example.test"), ("Doe, John", "john@example.test")]
    assert parsed.cc == [("", "team@example.test")]
    assert parsed.sender == parsed.reply_to == parsed.bcc == []
    assert parsed.date == datetime(2025, 11, 3, 9, 11, 12, tzinfo=UTC)
    assert parsed.date.utcoffset() == timedelta(hours=1)
    assert parsed.message_id == "<abc123.456@example.com>"
    assert parsed.in_reply_to == "<prev.1@example.test>"
    assert parsed.references == ["<root.0@example.test>", "<prev.1@example.test>"]
    assert parsed.preview.startswith("Hello Maria, Thanks for the notes from yesterday's meeting.")
    assert len(parsed.preview) == 200
    assert parsed.has_attachments is False
    assert parsed.defects == []
    assert (parsed.structure["type"], parsed.structure["subtype"]) == ("multipart", "alternative")


def test_the_envelope_follows_rfc_3501():
    parsed = parse_message(make_alternative())
    assert parsed.envelope == [
        "Mon, 3 Nov 2025 10:11:12 +0100",
        "=?UTF-8?Q?Re=3A_Reuni=C3=A3o_de_or=C3=A7amento?=",
        [["=?UTF-8?Q?Jo=C3=A3o_Silva?=", None, "joao", "example.com"]],
        [["=?UTF-8?Q?Jo=C3=A3o_Silva?=", None, "joao", "example.com"]],
        [["=?UTF-8?Q?Jo=C3=A3o_Silva?=", None, "joao", "example.com"]],
        [["Maria", None, "maria", "example.test"], ["Doe, John", None, "john", "example.test"]],
        [[None, None, "team", "example.test"]],
        None,
        "<prev.1@example.test>",
        "<abc123.456@example.com>",
    ]


def test_envelope_fields_are_nil_when_headers_are_missing():
    parsed = parse_message(b"Subject: only a subject\r\n\r\nbody\r\n")
    assert parsed.envelope == [
        None,
        "only a subject",
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
    ]
    assert "missing From header" in parsed.defects


def test_envelope_keeps_explicit_sender_and_reply_to_and_groups():
    raw = (
        b"From: a@x.org\r\nSender: s@x.org\r\nReply-To: List: r1@x.org, r2@x.org;\r\n"
        b"To: undisclosed-recipients:;\r\nSubject:\r\n \r\n folded\r\n\r\n"
    )
    envelope = parse_message(raw).envelope
    assert envelope[1] == "folded"
    assert envelope[3] == [[None, None, "s", "x.org"]]
    assert envelope[4] == [
        [None, None, "List", None],
        [None, None, "r1", "x.org"],
        [None, None, "r2", "x.org"],
        [None, None, None, None],
    ]
    assert envelope[5] == [[None, None, "undisclosed-recipients", None], [None, None, None, None]]


def test_envelope_strings_are_raw_and_unfolded():
    raw = b"Subject: =?utf-8?q?a?=\r\n =?utf-8?q?b?=\r\nDate: Mon,\r\n 3 Nov 2025\r\nFrom: \xc3\xa9 <e@x>\r\n\r\n"
    envelope = parse_message(raw).envelope
    assert envelope[0] == "Mon, 3 Nov 2025"
    assert envelope[1] == "=?utf-8?q?a?= =?utf-8?q?b?="
    assert envelope[2] == [["é", None, "e", "x"]]
    assert json.loads(json.dumps(envelope)) == envelope


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"Mon, 3 Nov 2025 10:11:12 -0000", datetime(2025, 11, 3, 10, 11, 12, tzinfo=UTC)),
        (b"3 Nov 2025 10:11:12", datetime(2025, 11, 3, 10, 11, 12, tzinfo=UTC)),
        (
            b"Mon, 3 Nov 2025 10:11:12 EST",
            datetime(2025, 11, 3, 10, 11, 12, tzinfo=timezone(timedelta(hours=-5))),
        ),
        (b"Blursday, 99 Foo 99999 25:61:61 +9999", None),
        (b"", None),
    ],
)
def test_dates_are_timezone_aware_or_none(value, expected):
    parsed = parse_message(b"Date: " + value + b"\r\n\r\n")
    assert parsed.date == expected
    assert parsed.date is None or parsed.date.tzinfo is not None


def test_references_are_capped_keeping_the_root_and_the_latest():
    refs = b" ".join(b"<r%d@x>" % i for i in range(300))
    parsed = parse_message(b"References: " + refs + b"\r\nIn-Reply-To: junk <p@x> <q@x>\r\n\r\n")
    assert len(parsed.references) == 100
    assert parsed.references[0] == "<r0@x>"
    assert parsed.references[-1] == "<r299@x>"
    assert parsed.in_reply_to == "<p@x>"


def test_long_subjects_are_cut_at_998_characters():
    parsed = parse_message(b"Subject: " + b"y" * 5000 + b"\r\n\r\n")
    assert parsed.subject == "y" * 998


def test_preview_of_html_only_mail_strips_markup_and_decodes_the_charset():
    raw = (
        b"Content-Type: text/html; charset=windows-1252\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"<html><head><title>T</title><style>p { color: red }</style></head>\r\n"
        b"<body><script>var x = '<p>';</script><!-- note --><p>Caf=E9 &amp;\r\n  cr&egrave;me</p>"
        b"<p>second&nbsp;para</p></body></html>\r\n"
    )
    assert parse_message(raw).preview == "Café & crème second para"


def test_preview_prefers_plain_text_and_skips_attachments():
    raw = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\nattached\r\n"
        b"--b\r\nContent-Type: text/html\r\n\r\n<b>html</b>\r\n"
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nT2zDoQ==\r\n"
        b"--b--\r\n"
    )
    assert parse_message(raw).preview == "Olá"


def test_preview_of_a_long_base64_part_is_cut_cleanly():
    import base64

    text = ("ação " * 5000).encode()
    raw = (
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(text).replace(b"\n", b"\r\n")
    )
    preview = parse_message(raw).preview
    assert preview == ("ação " * 40).strip()


def test_a_pdf_attachment_is_an_attachment():
    raw = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nsee\r\n"
        b'--b\r\nContent-Type: application/pdf; name="=?utf-8?q?r=C3=A9sum=C3=A9.pdf?="\r\n\r\n%PDF\r\n--b--\r\n'
    )
    parsed = parse_message(raw)
    assert parsed.has_attachments
    assert part_filename(find_part(parsed.structure, [2])) == "résumé.pdf"


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        (b"Content-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\nx", True),
        (b"Content-Type: image/png\r\n\r\nx", False),
        (b"Content-Type: image/png\r\nContent-Disposition: inline; filename=a.png\r\n\r\nx", True),
        (b"Content-Type: text/calendar; name=invite.ics\r\n\r\nx", False),
        (b"Content-Type: message/rfc822\r\n\r\nSubject: fwd\r\n\r\nx", True),
    ],
)
def test_has_attachments(part, expected):
    raw = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nbody\r\n--b\r\n"
        + part
        + b"\r\n--b--\r\n"
    )
    assert parse_message(raw).has_attachments is expected


def test_part_bodies_decode_base64_and_quoted_printable_tolerantly():
    raw = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVs!!bG8g\r\nd29y bGQ\r\n"
        b"--b\r\nContent-Transfer-Encoding: Quoted-Printable\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n"
        b"caf=E9 =ZZ=\r\n soft\r\n"
        b"--b\r\nContent-Type: text/plain; charset=x-unknown\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\xc3\xa9t\xc3\xa9\r\n"
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nbad \xe9 utf-8\r\n"
        b"--b--\r\n"
    )
    parsed = parse_message(raw)
    first, second, third, fourth = parsed.structure["children"]
    assert decode_part_body(raw, first) == b"Hello world"
    assert decode_part_body(raw, second) == b"caf\xe9 =ZZ soft"
    assert part_text(raw, second) == "café =ZZ soft"
    assert part_text(raw, third) == "été"
    assert part_text(raw, fourth) == "bad é utf-8"

