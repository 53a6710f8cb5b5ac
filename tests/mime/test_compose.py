"""Outgoing messages: correct MIME that parses back to exactly what was entered, no header
injection, reply/forward helpers."""

import email
from datetime import UTC, datetime
from email import policy

import pytest

from mailcore.mime.compose import (
    Attachment,
    ComposeError,
    Draft,
    build_message,
    forward_subject,
    parse_recipients,
    quote_text,
    reply_recipients,
    reply_references,
    reply_subject,
)
from mailcore.mime.parse import parse_message


def build(**kwargs) -> bytes:
    kwargs.setdefault("from_addr", "me@example.test")
    return build_message(Draft(**kwargs), hostname="mail.example.test")


def parsed(raw: bytes):
    return email.message_from_bytes(raw, policy=policy.default)


def test_a_plain_message_is_single_part_seven_bit_with_crlf():
    raw = build(to=[("", "bob@x.org")], subject="Hi", text="Hello\nBob\n")
    assert raw.isascii()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    msg = parsed(raw)
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content().replace("\r\n", "\n") == "Hello\nBob\n"
    assert msg["Message-ID"].endswith("@mail.example.test>")
    assert msg["Date"]


def test_unicode_everywhere_round_trips_exactly():
    raw = build(
        from_name="Zoë Ångström",
        to=[("Jürgen Groß", "jurgen@x.org"), ("李雷", "li@y.cn")],
        cc=[("", "cc@z.org")],
        subject="Grüße — 你好 🚀",
        text="Ünïcode body ✓\nsecond line\n",
        html="<p>Ünïcode ✓</p>",
    )
    assert raw.isascii()
    msg = parsed(raw)
    assert str(msg["Subject"]) == "Grüße — 你好 🚀"
    assert msg["From"].addresses[0].display_name == "Zoë Ångström"
    assert [a.display_name for a in msg["To"].addresses] == ["Jürgen Groß", "李雷"]
    assert msg.get_content_type() == "multipart/alternative"
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == "Ünïcode body ✓\nsecond line\n"
    assert msg.get_body(("html",)).get_content().strip() == "<p>Ünïcode ✓</p>"
    ours = parse_message(raw)
    assert ours.subject == "Grüße — 你好 🚀"


def test_attachments_make_multipart_mixed_with_rfc2231_names():
    data = bytes(range(256)) * 10
    raw = build(
        to=[("", "bob@x.org")],
        text="see attached",
        attachments=[Attachment("résumé 2026.pdf", "application/pdf", data),
                     Attachment("notes.txt", "text/plain", b"plain notes\n")],
    )
    msg = parsed(raw)
    assert msg.get_content_type() == "multipart/mixed"
    files = {part.get_filename(): part for part in msg.iter_attachments()}
    assert set(files) == {"résumé 2026.pdf", "notes.txt"}
    assert files["résumé 2026.pdf"].get_content() == data
    assert files["résumé 2026.pdf"].get_content_type() == "application/pdf"
    assert b"filename*=utf-8''r%C3%A9sum%C3%A9" in raw


def test_hostile_attachment_names_and_types_are_neutralised():
    with pytest.raises(ComposeError):
        build(to=[("", "b@x.org")], attachments=[Attachment("a\r\nX-Evil: 1", "text/plain", b"x")])
    raw = build(to=[("", "b@x.org")], attachments=[Attachment("../../etc/passwd", "weird", b"x")])
    part = next(parsed(raw).iter_attachments())
    assert part.get_filename() == ".._.._etc_passwd"
    assert part.get_content_type() == "application/octet-stream"


@pytest.mark.parametrize(
    "field,kwargs",
    [
        ("subject", {"subject": "Hi\r\nBcc: victim@x.org"}),
        ("subject", {"subject": "Hi\nX-Injected: yes"}),
        ("from", {"from_name": "Me\r\nX-Injected: yes"}),
        ("from", {"from_addr": "me@example.test\r\nX-Injected: yes"}),
        ("in-reply-to", {"in_reply_to": "<a@b>\r\nX-Injected: yes"}),
        ("references", {"references": ["<a@b>\nX-Injected: yes"]}),
    ],
)
def test_line_breaks_in_any_field_are_refused_not_injected(field, kwargs):
    with pytest.raises(ComposeError) as info:
        build(to=[("", "bob@x.org")], **kwargs)
    assert info.value.field == field


@pytest.mark.parametrize("text", ["Bob <bob@x.org>\r\nBcc: v@x.org", "bob@x.org\nX: y"])
def test_line_breaks_in_recipients_are_refused(text):
    with pytest.raises(ComposeError):
        parse_recipients("to", text)


def test_names_with_line_breaks_inside_quotes_cannot_inject_either():
    with pytest.raises(ComposeError):
        build(to=[("Evil\r\nBcc: v@x.org", "bob@x.org")])


def test_recipients_are_parsed_and_validated():
    assert parse_recipients("to", 'Bob <Bob@X.org>, "Doe, Jane" <jane@y.org>, c@z.org') == [
        ("Bob", "Bob@x.org"),
        ("Doe, Jane", "jane@y.org"),
        ("", "c@z.org"),
    ]
    assert parse_recipients("cc", "   ") == []
    for bad in ["bob", "bob@", "@x.org", "a@b", "a b@x.org", "bob@x.org, nonsense", "a@-x.org"]:
        with pytest.raises(ComposeError):
            parse_recipients("to", bad)


def test_reply_and_forward_subjects_do_not_pile_up():
    assert reply_subject("Re: RE: Aw: Lunch") == "Re: Lunch"
    assert reply_subject("Lunch") == "Re: Lunch"
    assert forward_subject("Fwd: Re: Lunch") == "Fwd: Lunch"
    assert reply_subject("") == "Re:"


def test_reply_references_append_the_message_id():
    assert reply_references("<c@x>", ["<a@x>", "<b@x>"]) == ["<a@x>", "<b@x>", "<c@x>"]
    many = [f"<{i}@x>" for i in range(40)]
    refs = reply_references("<last@x>", many)
    assert refs[0] == "<0@x>" and refs[-1] == "<last@x>" and len(refs) == 20


def test_reply_all_leaves_out_own_addresses():
    to, cc = reply_recipients(
        from_=[("Ann", "ann@x.org")],
        reply_to=[],
        to=[("Me", "me@example.test"), ("Bob", "bob@x.org")],
        cc=[("", "carol@y.org"), ("", "ME@example.test"), ("", "ann@x.org")],
        own_addresses={"me@example.test"},
        reply_all=True,
    )
    assert to == [("Ann", "ann@x.org")]
    assert cc == [("Bob", "bob@x.org"), ("", "carol@y.org")]


def test_reply_goes_to_reply_to_and_a_reply_to_own_mail_goes_to_its_recipients():
    to, cc = reply_recipients(from_=[("", "a@x.org")], reply_to=[("List", "list@x.org")], to=[],
                              cc=[], own_addresses=set(), reply_all=False)
    assert to == [("List", "list@x.org")] and cc == []
    to, _ = reply_recipients(from_=[("", "me@example.test")], reply_to=[],
                             to=[("", "bob@x.org")], cc=[], own_addresses={"me@example.test"},
                             reply_all=False)
    assert to == [("", "bob@x.org")]


def test_quoting_marks_every_line():
    quoted = quote_text("one\n> two\n\nthree", "Ann <ann@x.org>", datetime(2026, 1, 2, 3, 4, tzinfo=UTC))
    assert "On Fri, 02 Jan 2026 at 03:04, Ann <ann@x.org> wrote:" in quoted
    assert "> one\n>> two\n>\n> three" in quoted


def test_forward_as_attachment_keeps_the_original_bytes():
    original = b"From: a@b.org\r\nSubject: old\r\n\r\nold body\r\n"
    raw = build(to=[("", "bob@x.org")], text="fyi", forwarded=[original])
    msg = parsed(raw)
    part = next(msg.iter_attachments())
    assert part.get_content_type() == "message/rfc822"
    assert str(part.get_content()["Subject"]) == "old"
    eight_bit = b"From: a@b.org\r\nSubject: caf\xc3\xa9\r\n\r\nol\xc3\xa9\r\n"
    raw = build(to=[("", "bob@x.org")], text="fyi", forwarded=[eight_bit])
    assert raw.isascii()
    assert next(parsed(raw).iter_attachments()).get_content() == eight_bit
