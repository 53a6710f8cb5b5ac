"""Conformance points found by Dovecot's imaptest (issue 15), each checked with a real client
(imaplib) against the real listener."""

import pytest

from mailcore.services import delivery
from tests.conftest import PASSWORD
from tests.factories import make_message
from tests.imap.conftest import ADDRESS
from tests.imap.test_commands import exchange, raw_session

pytestmark = pytest.mark.django_db(transaction=True)


def deliver_raw(mailbox, *messages: bytes) -> None:
    for raw in messages:
        delivery.deliver_to_mailboxes(raw, [mailbox.pk])


def searcher(client):
    return lambda *criteria: client.search(None, *criteria)[1][0].split()


def test_sent_dates_use_the_day_written_in_the_date_header(connect, mailbox):
    # RFC 3501 §6.4.4: SENT* disregard time and time zone. 23:30 -0500 is the next day in UTC,
    # 00:30 +0300 the previous one; both count on the day they say.
    deliver_raw(
        mailbox,
        make_message(subject="late", date="Sat, 24 Mar 2007 23:30:00 -0500"),
        make_message(subject="early", date="Sun, 25 Mar 2007 00:30:00 +0300"),
        make_message(subject="monday", date="Mon, 26 Mar 2007 12:00:00 +0000"),
    )
    client = connect()
    client.select("INBOX")
    search = searcher(client)
    assert search("SENTON", "24-Mar-2007") == [b"1"]
    assert search("SENTON", "25-Mar-2007") == [b"2"]
    assert search("SENTBEFORE", "25-Mar-2007") == [b"1"]
    assert search("SENTSINCE", "25-Mar-2007") == [b"2", b"3"]
    assert search("NOT", "SENTON", "25-Mar-2007") == [b"1", b"3"]
    assert search("OR", "SENTON", "24-Mar-2007", "SENTON", "26-Mar-2007") == [b"1", b"3"]
    # BEFORE/ON/SINCE keep using the internal date (today's delivery).
    assert search("BEFORE", "1-Jan-2008") == []
    assert search("SINCE", "1-Jan-2008") == [b"1", b"2", b"3"]


def test_header_with_empty_text_matches_the_messages_having_the_field(connect, mailbox):
    deliver_raw(
        mailbox,
        b"From: a@example.test\r\nSubject: hello\r\n\r\nbody\r\n",
        b"From: b@example.test\r\nX-Extra: yes\r\n\r\nbody\r\n",
    )
    client = connect()
    client.select("INBOX")
    search = searcher(client)
    assert search("HEADER", "SUBJECT", '""') == [b"1"]
    assert search("NOT", "HEADER", "SUBJECT", '""') == [b"2"]
    assert search("HEADER", "X-Extra", '""') == [b"2"]
    assert search("HEADER", "To", '""') == []
    assert search("HEADER", "From", '""') == [b"1", b"2"]


def test_address_keys_match_every_address_and_group_names(connect, mailbox):
    deliver_raw(
        mailbox,
        b"From: one@example.test, second-sender@example.test\r\n"
        b"Bcc: =?utf-8?q?Ren=C3=A9e?= <renee@example.test>\r\n\r\nbody\r\n",
        b"From: Real Name <x@example.test>\r\n"
        b"To: team: member1@example.test, member2@example.test;, other: m3@example.test;\r\n"
        b"\r\nbody\r\n",
        b"From: <user (comment)@ (comment) example.test>\r\nTo: empty:;\r\n\r\nbody\r\n",
    )
    client = connect()
    client.select("INBOX")
    search = searcher(client)
    assert search("FROM", "second-sender") == [b"1"]
    assert search("FROM", "\"real name\"") == [b"2"]
    assert search("FROM", "user@example.test") == [b"3"]
    assert search("TO", "team") == [b"2"]
    assert search("TO", "member2") == [b"2"]
    assert search("TO", "empty") == [b"3"]
    assert search("TO", "nobody") == []
    client.literal = "renée".encode()
    assert client.search("UTF-8", "BCC")[1][0].split() == [b"1"]
    assert search("CC", "example") == []



def test_a_new_keyword_is_announced_in_flags_before_a_fetch_shows_it(connect, imap, mailbox):
    # RFC 3501 §7.2.6: a client is only shown keywords an untagged FLAGS listed; a STORE that
    # introduces one (here or in another session) announces FLAGS and PERMANENTFLAGS first.
    deliver_raw(mailbox, make_message(subject="one"), make_message(subject="two"))
    watcher = connect()
    watcher.select("INBOX")
    assert b"$Later" not in watcher.response("FLAGS")[1][0]
    sock, reader = raw_session(imap.port)
    exchange(sock, reader, f't0 LOGIN {ADDRESS} "{PASSWORD}"'.encode(), b"t0")
    exchange(sock, reader, b"t1 SELECT INBOX", b"t1")
    lines = exchange(sock, reader, b"t2 STORE 1 +FLAGS ($Later)", b"t2")
    assert lines[0].startswith(b"* FLAGS (") and b"$Later" in lines[0], lines
    assert lines[1].startswith(b"* OK [PERMANENTFLAGS (") and b"$Later \\*)" in lines[1], lines
    assert lines[2].startswith(b"* 1 FETCH (FLAGS (") and b"$Later" in lines[2], lines
    assert lines[3].startswith(b"t2 OK"), lines
    # Announced once: the same keyword again sends no new FLAGS.
    lines = exchange(sock, reader, b"t3 STORE 2 +FLAGS ($Later)", b"t3")
    assert [line[:9] for line in lines] == [b"* 2 FETCH", b"t3 OK STO"], lines
    sock.close()
    # The other session learns of it through the change events, FLAGS first.
    typ, data = watcher.noop()
    assert typ == "OK"
    assert any(b"$Later" in flags for flags in watcher.response("FLAGS")[1]), watcher.response("FLAGS")
    assert any(b"$Later \\*" in code for code in watcher.response("PERMANENTFLAGS")[1])
    typ, data = watcher.fetch("1:2", "(FLAGS)")
    assert all(b"$Later" in item for item in data), data


def test_move_into_the_selected_folder_gives_the_message_a_new_uid(connect, mailbox):
    # imaptest's move script: RFC 6851 does not forbid it, so it is a MOVE like any other.
    deliver_raw(mailbox, make_message(subject="one"), make_message(subject="two"))
    client = connect()
    client.select("INBOX")
    client.store("1", "+FLAGS", "(\\Flagged)")
    typ, data = client._simple_command("MOVE", "1", "INBOX")
    assert typ == "OK", data
    copyuid = client.response("COPYUID")[1][0].split()
    assert copyuid[1:] == [b"1", b"3"], copyuid
    typ, data = client.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    fetched = b" ".join(part[0] + part[1] if isinstance(part, tuple) else part for part in data)
    assert b"UID 2 " in fetched and b"UID 3 " in fetched and b"UID 1 " not in fetched
    assert fetched.index(b"two") < fetched.index(b"one")
    typ, data = client.uid("SEARCH", "FLAGGED")
    assert data == [b"3"]


def test_mailbox_names_that_are_not_canonical_modified_utf7_get_no(connect, mailbox):
    client = connect()
    # Not valid modified UTF-7: an unknown name like any other (NO), never a BAD.
    typ, data = client.select('"!#$&\'+,-.0123456789:;<=>?@^_`|[}"')
    assert typ == "NO", data
    assert client.list('""', '"!#$&\'+,-.0123456789:;<=>?@^_`|[}%*"') == ("OK", [None])
    for name in ('"&Jjo"', '"&AGE-"', b'"caf\xc3\xa9"', b'"bad\xff"', "a/../b", "a/./b",
                 "..", "a//b", '"&AOk"'):
        typ, data = client.create(name)
        assert typ == "NO", (name, data)
    typ, data = client.create("Work")
    assert typ == "OK"
    typ, data = client.rename("Work", '"&AGE-"')
    assert typ == "NO", data
    typ, data = client.rename("Work", "Work/../Play")
    assert typ == "NO", data
    typ, data = client.create('"Caf&AOk-"')
    assert typ == "OK", data
    assert client.list('""', '"Caf*"')[1] == [b'(\\HasNoChildren) "/" "Caf&AOk-"']
    typ, data = client.select('"Caf&AOk-"')
    assert typ == "OK", data


def test_lsub_shows_noselect_parents_and_subscriptions_outlive_folders(connect):
    client = connect()
    for name in ("Lists", "Lists/dev", "Lists/ops/", "Lists/ops/alerts", "Lists/qa"):
        assert client.create(name)[0] == "OK"
    # CREATE does not subscribe (RFC 3501 §6.3.3).
    assert client.lsub('""', "Lists*") == ("OK", [None])
    assert client.subscribe("Lists/dev")[0] == "OK"
    assert client.subscribe("Lists/ops/alerts")[0] == "OK"

    def lsub(pattern):
        return [line for line in client.lsub('""', pattern)[1] if line]

    # RFC 3501 §6.3.9: with %, a parent that is not subscribed stands for its subscribed child.
    assert lsub("Lists/%") == [b'(\\HasNoChildren) "/" "Lists/dev"',
                               b'(\\Noselect) "/" "Lists/ops"']
    assert lsub("Lists/*") == [b'(\\HasNoChildren) "/" "Lists/dev"',
                               b'(\\HasNoChildren) "/" "Lists/ops/alerts"']
    # RFC 3501 §6.3.6: deleting the folder keeps the subscription; UNSUBSCRIBE still works.
    assert client.delete("Lists/dev")[0] == "OK"
    assert lsub("Lists/d*") == [b'() "/" "Lists/dev"']
    assert client.unsubscribe("Lists/dev")[0] == "OK"
    assert lsub("Lists/d*") == []
    assert client.unsubscribe("Lists/ops/alerts")[0] == "OK"
    assert lsub("Lists/%") == []
    # SUBSCRIBE still wants the folder to exist.
    typ, data = client.subscribe("Lists/nothing")
    assert typ == "NO", data
