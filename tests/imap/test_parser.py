"""The IMAP command parser on its own: bytes in, typed commands out, BAD on malformed input."""

from datetime import UTC, date, datetime

import pytest

from mailcore.protocols.imap.parser import (
    MAX_DEPTH,
    BadCharset,
    ParseError,
    SequenceSet,
    decode_mailbox,
    encode_mailbox,
    literal_request,
    parse_command,
)
from mailcore.protocols.imap.state import BadSequence, Selected
from mailcore.services import imap_keys as k


def test_atoms_quoted_strings_and_literals_parse_as_login_arguments():
    cmd = parse_command(b'a1 LOGIN "demo@example.test" {5}\r\npa ss')
    assert (cmd.tag, cmd.name) == ("a1", "LOGIN")
    assert (cmd.user, cmd.password) == ("demo@example.test", "pa ss")
    cmd = parse_command(b'a2 login demo "with \\"quote\\" and \\\\"')
    assert cmd.password == 'with "quote" and \\'


def test_non_synchronizing_literal_marker_is_recognised():
    assert literal_request(b"a APPEND INBOX {12+}\r\n") == (12, True)
    assert literal_request(b"a APPEND INBOX {12}\r\n") == (12, False)
    assert literal_request(b"a NOOP\r\n") is None
    cmd = parse_command(b"a APPEND INBOX (\\Seen) {3+}\r\nabc")
    (message,) = cmd.messages
    assert message.message == b"abc" and message.flags == ["\\Seen"]


def test_multiappend_carries_several_messages_each_with_its_flags_and_date():
    cmd = parse_command(
        b'a APPEND INBOX (\\Seen) {3+}\r\nabc "17-Jul-1996 02:44:25 -0700" {2+}\r\nde {1}\r\nf'
    )
    assert [m.message for m in cmd.messages] == [b"abc", b"de", b"f"]
    assert [m.flags for m in cmd.messages] == [["\\Seen"], [], []]
    assert cmd.messages[1].date == datetime(1996, 7, 17, 9, 44, 25, tzinfo=UTC)
    assert cmd.messages[0].date is None


def test_append_without_a_message_or_with_a_trailing_space_is_a_parse_error():
    for data in (b"a APPEND INBOX", b"a APPEND INBOX (\\Seen)", b"a APPEND INBOX {1}\r\nx "):
        with pytest.raises(ParseError):
            parse_command(data)


def test_append_date_time_is_converted_to_utc():
    cmd = parse_command(b'a APPEND Sent "17-Jul-1996 02:44:25 -0700" {1}\r\nx')
    assert cmd.messages[0].date == datetime(1996, 7, 17, 9, 44, 25, tzinfo=UTC)


def test_sequence_sets_accept_star_and_ranges_in_any_order():
    cmd = parse_command(b"a FETCH 5:2,*,7:* FLAGS")
    seqset = cmd.set
    assert seqset.ranges == ((5, 2), (None, None), (7, None))
    assert seqset.resolve(10) == [(2, 5), (7, 10)]


def test_huge_sequence_set_costs_one_pair_not_four_billion_numbers():
    seqset = SequenceSet(((1, 4294967295),))
    assert seqset.resolve(4294967295) == [(1, 4294967295)]
    from array import array

    from mailcore.models import Folder

    folder = Folder(highestmodseq=1)
    selected = Selected(folder, False, array("I", [3, 9, 12]))
    assert selected.resolve(seqset, uid_mode=True) == [(0, 2)]
    with pytest.raises(BadSequence):
        selected.resolve(seqset, uid_mode=False)


def test_zero_and_oversized_sequence_numbers_are_bad():
    for text in (b"a FETCH 0 FLAGS", b"a FETCH 4294967296 FLAGS", b"a FETCH 1:: FLAGS"):
        with pytest.raises(ParseError):
            parse_command(text)


def test_fetch_macros_and_sections_with_partials():
    atts = parse_command(b"a FETCH 1 FULL").atts
    assert [att.name for att in atts] == ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE",
                                          "BODY"]
    atts = parse_command(
        b"a UID FETCH 1:* (BODY.PEEK[1.2.HEADER.FIELDS.NOT (Received X-Spam)]<10.20> BODY[2.MIME]"
        b" BODY[] RFC822.SIZE)"
    ).atts
    first = atts[0]
    assert first.peek and first.section.parts == (1, 2)
    assert first.section.spec == "HEADER.FIELDS.NOT"
    assert first.section.fields == ("RECEIVED", "X-SPAM")
    assert first.partial == (10, 20)
    assert first.response_name() == "BODY[1.2.HEADER.FIELDS.NOT (RECEIVED X-SPAM)]<10>"
    assert atts[1].section.spec == "MIME" and atts[1].sets_seen
    assert atts[2].section.parts == () and atts[2].response_name() == "BODY[]"


def test_bad_fetch_attributes_and_sections_are_rejected():
    for text in (b"a FETCH 1 (FOO)", b"a FETCH 1 BODY[MIME]", b"a FETCH 1 BODY[1.BOGUS]",
                 b"a FETCH 1 (FLAGS"):
        with pytest.raises(ParseError):
            parse_command(text)


def test_search_keys_nest_with_or_not_and_parentheses():
    key = parse_command(
        b'a SEARCH CHARSET UTF-8 OR (FROM alice SINCE 1-Feb-2024) NOT HEADER X-Tag "a b" 1:3'
    ).key
    assert key == k.And((
        k.Or(
            k.And((k.Header("from", "alice"), k.DateKey("internal", "since", date(2024, 2, 1)))),
            k.Not(k.Header("x-tag", "a b")),
        ),
        k.Seq(SequenceSet(((1, 3),))),
    ))


def test_search_with_an_unknown_charset_is_badcharset():
    # SEARCH carries it to the handler (a NO there empties SEARCHRES's "$", RFC 5182 §2.1);
    # SORT and THREAD refuse it while parsing.
    assert "KOI8-R" in parse_command(b"a SEARCH CHARSET KOI8-R TEXT x").bad_charset
    with pytest.raises(BadCharset):
        parse_command(b"a SORT (DATE) KOI8-R ALL")


def test_nesting_beyond_the_limit_is_refused():
    deep = b"a SEARCH " + b"(" * (MAX_DEPTH + 1) + b"ALL" + b")" * (MAX_DEPTH + 1)
    with pytest.raises(ParseError, match="deep"):
        parse_command(deep)
    nots = b"a SEARCH " + b"NOT " * (MAX_DEPTH + 1) + b"ALL"
    with pytest.raises(ParseError, match="deep"):
        parse_command(nots)


def test_modified_utf7_mailbox_names_round_trip():
    assert decode_mailbox(b"&ZeVnLIqe-") == "日本語"
    assert decode_mailbox(b"Caf&AOk-/A&-B") == "Café/A&B"
    assert encode_mailbox("Café/A&B") == "Caf&AOk-/A&-B"
    for name in ("日本語", "~peter/mail/台北/日本語", "a&b", "plain"):
        assert decode_mailbox(encode_mailbox(name).encode()) == name
    assert decode_mailbox(b"Caf&AOk-").canonical
    # Not modified UTF-7, or not its one spelling: taken as written, marked, never a BAD.
    for wire in (b"&Jjo", b"&'+,-", b"&AGE-", b"&AOk", b"caf\xc3\xa9", b"\xff\xfe"):
        assert not decode_mailbox(wire).canonical, wire
    assert decode_mailbox(b"&AGE-") == "a"
    assert decode_mailbox(b"caf\xc3\xa9") == "café"


def test_the_tag_is_kept_on_errors_so_the_reply_can_name_it():
    with pytest.raises(ParseError) as info:
        parse_command(b"x12 FROB")
    assert info.value.tag == "x12"


def test_store_modes_and_silent():
    cmd = parse_command(b"a UID STORE 1:* -FLAGS.SILENT (\\Seen $Label)")
    assert cmd.uid and cmd.mode == "remove" and cmd.silent
    assert cmd.flags == ["\\Seen", "$Label"]
    cmd = parse_command(b"a STORE 2 FLAGS \\Deleted")
    assert cmd.mode == "replace" and cmd.flags == ["\\Deleted"]


def test_every_registered_command_has_one_handler_in_the_group_of_its_states():
    from mailcore.protocols.imap import handlers
    from mailcore.protocols.imap.parser import AUTHENTICATED, COMMANDS, SELECTED

    handlers.check_registry()
    assert COMMANDS["FETCH"].states == SELECTED and COMMANDS["FETCH"].has_uid_form
    assert COMMANDS["APPEND"].states == AUTHENTICATED and not COMMANDS["APPEND"].small_literals
    assert "cmd_FETCH" in vars(handlers.SelectedState)


def test_a_handler_registered_for_other_states_than_its_group_fails_loudly(monkeypatch):
    from dataclasses import replace

    from mailcore.protocols.imap import handlers
    from mailcore.protocols.imap.parser import COMMANDS, NOT_AUTHENTICATED

    monkeypatch.setitem(COMMANDS, "FETCH", replace(COMMANDS["FETCH"], states=NOT_AUTHENTICATED))
    with pytest.raises(RuntimeError, match="FETCH"):
        handlers.check_registry()
    monkeypatch.setattr(handlers.SelectedState, "cmd_FROB", lambda self, cmd: "", raising=False)
    monkeypatch.setitem(COMMANDS, "FETCH", COMMANDS["FETCH"])
    with pytest.raises(RuntimeError, match="cmd_FROB"):
        handlers.check_registry()
