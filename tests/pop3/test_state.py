"""The POP3 state module and wire helpers, without I/O: sizes, byte-stuffing, TOP, parsing."""

import base64

import pytest

from mailcore.mime.wire import crlf_size, dot_stuff, to_crlf
from mailcore.protocols.pop3.state import (
    MessageList,
    Pop3Error,
    decode_sasl_plain,
    parse_command,
    retr_response,
    top_response,
)


@pytest.mark.parametrize(
    "raw, wire",
    [
        (b"", b""),
        (b"A: b\r\n\r\nbody\r\n", b"A: b\r\n\r\nbody\r\n"),
        (b"A: b\n\nbody\n", b"A: b\r\n\r\nbody\r\n"),
        (b"A: b\r\n\r\nno end", b"A: b\r\n\r\nno end\r\n"),
        (b"A: b\n\r\nmixed\nends\r\n", b"A: b\r\n\r\nmixed\r\nends\r\n"),
        (b"bare\rcr\n", b"bare\rcr\r\n"),
        (b"ends in cr\r", b"ends in cr\r\r\n"),
    ],
)
def test_messages_are_sent_with_crlf_line_ends_and_sized_as_sent(raw, wire):
    assert to_crlf(raw) == wire
    assert crlf_size(raw) == len(wire)


def test_lines_starting_with_a_dot_are_stuffed_and_others_are_not():
    wire = b".first\r\nmiddle.\r\n.\r\n..two\r\nx.y\r\n"
    assert dot_stuff(wire) == b"..first\r\nmiddle.\r\n..\r\n...two\r\nx.y\r\n"


def test_retr_reply_counts_octets_before_stuffing():
    status, body, end = retr_response(b"Subject: s\n\n.\n")
    assert status == b"+OK 17 octets\r\n"
    assert body == b"Subject: s\r\n\r\n..\r\n"
    assert end == b".\r\n"


MESSAGE = b"From: a@b.test\r\nSubject: t\r\n\r\nline 1\r\n.line 2\r\nline 3\r\n"


@pytest.mark.parametrize(
    "lines, expected",
    [
        (0, b"From: a@b.test\r\nSubject: t\r\n\r\n"),
        (1, b"From: a@b.test\r\nSubject: t\r\n\r\nline 1\r\n"),
        (2, b"From: a@b.test\r\nSubject: t\r\n\r\nline 1\r\n..line 2\r\n"),
        (99, b"From: a@b.test\r\nSubject: t\r\n\r\nline 1\r\n..line 2\r\nline 3\r\n"),
    ],
)
def test_top_sends_the_header_the_blank_line_and_n_body_lines(lines, expected):
    assert top_response(MESSAGE, lines) == [b"+OK\r\n", expected, b".\r\n"]


def test_top_of_a_message_without_a_blank_line_is_the_whole_message():
    assert top_response(b"Subject: only\r\nX: y", 3)[1] == b"Subject: only\r\nX: y\r\n"


def test_top_of_a_message_with_an_empty_header_starts_at_the_blank_line():
    assert top_response(b"\r\nbody 1\r\nbody 2\r\n", 1)[1] == b"\r\nbody 1\r\n"


def test_commands_are_case_insensitive_and_pass_keeps_its_spaces():
    assert parse_command(b"list 3").verb == "LIST"
    assert parse_command(b"list 3").args == ("3",)
    command = parse_command(b"PASS  two words ")
    assert command.args == (" two words ",)


@pytest.mark.parametrize("line", [b"", b"FROB", b"ST\xc3\xa9T", b"STAT\x00", b" STAT"])
def test_garbage_is_a_bad_command(line):
    with pytest.raises(Pop3Error) as info:
        parse_command(line)
    assert info.value.bad_command


def test_sasl_plain_accepts_an_empty_or_equal_authzid_only():
    def b64(text):
        return base64.b64encode(text.encode()).decode()

    assert decode_sasl_plain(b64("\0u@x.test\0pw")) == ("u@x.test", "pw")
    assert decode_sasl_plain(b64("u@x.test\0u@x.test\0p w")) == ("u@x.test", "p w")
    for bad in [b64("other@x.test\0u@x.test\0pw"), b64("no nuls"), "!!!", "", b64("\0\0pw")]:
        with pytest.raises(Pop3Error) as info:
            decode_sasl_plain(bad)
        assert info.value.code == "AUTH"


def test_message_list_numbers_marks_and_resets():
    messages = MessageList(uids=[4, 9, 12], sizes=[10, 20, 30], unique_ids=["v.4", "v.9", "v.12"])
    assert messages.stat() == b"+OK 3 60\r\n"
    assert messages.delete("2") == b"+OK message 2 deleted\r\n"
    assert messages.stat() == b"+OK 2 40\r\n"
    assert messages.list_all() == b"+OK 2 messages (40 octets)\r\n1 10\r\n3 30\r\n.\r\n"
    assert messages.uidl_all() == b"+OK\r\n1 v.4\r\n3 v.12\r\n.\r\n"
    for bad, text in [("2", "message 2 already deleted"), ("4", "no such message"),
                      ("0", "no such message")]:
        with pytest.raises(Pop3Error, match=text):
            messages.number(bad)
    for bad in ["-1", "x", "1.0", "99999999999"]:
        with pytest.raises(Pop3Error) as info:
            messages.number(bad)
        assert info.value.bad_command
    assert messages.deleted_uids() == [9]
    assert messages.reset() == b"+OK maildrop has 3 messages (60 octets)\r\n"
    assert messages.deleted_uids() == []
