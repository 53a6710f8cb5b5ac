"""UTF8=ACCEPT (RFC 6855) and IMAP4rev2 (RFC 9051) against a real listener with imaplib and
raw sockets: ENABLE switches a session to UTF-8 mailbox names (quoted strings, no modified
UTF-7), APPEND's UTF8 data extension, SEARCH without CHARSET; IMAP4rev2 sessions get ESEARCH
for SEARCH, no \\Recent or RECENT, the selected mailbox's LIST and OK [CLOSED]. IMAP4rev1
sessions alongside see what they saw before."""

import imaplib

import pytest

from mailcore.models import Folder, Message
from mailcore.services import delivery, folders
from tests.conftest import PASSWORD
from tests.factories import make_message
from tests.imap.conftest import ADDRESS
from tests.imap.test_hostile import logged_in, login, open_raw, until_tag

pytestmark = pytest.mark.django_db(transaction=True)


def _command(sock, reader, tag: bytes, command: bytes) -> list[bytes]:
    sock.sendall(tag + b" " + command + b"\r\n")
    return until_tag(reader, tag)


def test_capabilities_list_the_new_extensions_after_the_old_ones(connect):
    client = connect()
    caps = client.capability()[1][0].decode().split()
    assert {"IMAP4rev1", "IMAP4rev2", "BINARY", "UTF8=ACCEPT"} <= set(caps)
    assert caps[0] == "IMAP4rev1"


def test_enable_reports_only_what_it_newly_enabled_and_ignores_unknown_names(imap, mailbox):
    sock, reader = open_raw(imap.port)
    # ENABLE is an authenticated-state command (RFC 5161 §3.1).
    assert _command(sock, reader, b"a", b"ENABLE UTF8=ACCEPT")[-1].startswith(b"a BAD")
    login(sock, reader)
    lines = _command(sock, reader, b"b", b"ENABLE X-UNKNOWN utf8=accept UTF8=ACCEPT IMAP4rev2")
    assert lines == [b"* ENABLED UTF8=ACCEPT IMAP4rev2\r\n", b"b OK ENABLE completed\r\n"]
    assert _command(sock, reader, b"c", b"ENABLE UTF8=ACCEPT X-NOTHING")[0] == b"* ENABLED\r\n"
    for junk in (b"ENABLE", b"ENABLE (UTF8=ACCEPT)", b'ENABLE "UTF8=ACCEPT"', b"ENABLE \x00"):
        assert _command(sock, reader, b"d", junk)[-1].startswith(b"d BAD"), junk
    sock.close()


def test_utf8_accept_sessions_use_utf8_mailbox_names(imap, mailbox):
    folders.create_folder(mailbox, "Entwürfe & Notizen")
    old = logged_in(imap.port)
    sock, reader = open_raw(imap.port)
    login(sock, reader)
    _command(sock, reader, b"e", b"ENABLE UTF8=ACCEPT")
    lines = _command(sock, reader, b"l", b'LIST "" "Entw*"')
    assert lines[0] == '* LIST (\\HasNoChildren) "/" "Entwürfe & Notizen"\r\n'.encode()
    # Names are read as UTF-8: "&" is a character, not the start of modified UTF-7.
    lines = _command(sock, reader, b"s", 'STATUS "Entwürfe & Notizen" (MESSAGES)'.encode())
    assert lines[0] == '* STATUS "Entwürfe & Notizen" (MESSAGES 0)\r\n'.encode()
    assert _command(sock, reader, b"c", 'CREATE "Ünïcødé/&Amp"'.encode())[-1].startswith(b"c OK")
    assert Folder.objects.filter(name="Ünïcødé/&Amp").exists()
    # The modified UTF-7 spelling names another folder in a UTF-8 session (none here).
    assert _command(sock, reader, b"x", b'SELECT "Entw&APw-rfe &- Notizen"')[-1].startswith(b"x NO")
    # Octets that are not UTF-8 are BAD (RFC 6855 §3); a name not in NFC is not created.
    assert _command(sock, reader, b"y", b'CREATE "bad\xff\xfe"')[-1].startswith(b"y BAD")
    decomposed = "Cafe\u0301".encode()
    assert _command(sock, reader, b"z", b'CREATE "' + decomposed + b'"')[-1].startswith(b"z NO")
    # An IMAP4rev1 session alongside still reads and writes modified UTF-7.
    typ, data = old.list('""', "Entw*")
    assert data == [b'(\\HasNoChildren) "/" "Entw&APw-rfe &- Notizen"']
    assert old.select('"&ANw-n&AO8-c&APg-d&AOk-/&-Amp"')[0] == "OK"
    old.logout()
    sock.close()


def test_utf8_accept_search_takes_no_charset_and_matches_utf8_text(imap, mailbox):
    delivery.deliver_to_mailboxes(make_message(subject="Grüße aus Köln"), [mailbox.pk])
    delivery.deliver_to_mailboxes(make_message(subject="plain"), [mailbox.pk])
    sock, reader = open_raw(imap.port)
    login(sock, reader)
    _command(sock, reader, b"e", b"ENABLE UTF8=ACCEPT")
    _command(sock, reader, b"s", b"SELECT INBOX")
    lines = _command(sock, reader, b"a", 'SEARCH SUBJECT "Grüße"'.encode())
    assert lines == [b"* SEARCH 1\r\n", b"a OK SEARCH completed\r\n"]
    # RFC 6855 §3: a charset after ENABLE UTF8=ACCEPT is BAD, even UTF-8.
    lines = _command(sock, reader, b"b", 'SEARCH CHARSET UTF-8 SUBJECT "Grüße"'.encode())
    assert lines[-1].startswith(b"b BAD")
    sock.close()
    # Without ENABLE, CHARSET UTF-8 with a literal works as in IMAP4rev1.
    client = logged_in(imap.port)
    client.select("INBOX")
    client.literal = "Köln".encode()
    assert client.search("UTF-8", "SUBJECT") == ("OK", [b"1"])
    client.logout()


def test_append_utf8_data_extension_needs_utf8_accept(imap, mailbox):
    raw = "From: jörg@bücher.example\r\nSubject: Grüße\r\n\r\nHallo\r\n".encode()
    sock, reader = open_raw(imap.port)
    login(sock, reader)
    cmd = b"a APPEND INBOX UTF8 (~{%d+}\r\n%s)\r\n" % (len(raw), raw)
    sock.sendall(cmd)
    assert until_tag(reader, b"a")[-1].startswith(b"a BAD")
    _command(sock, reader, b"e", b"ENABLE UTF8=ACCEPT")
    sock.sendall(b"b APPEND INBOX (\\Seen) UTF8 (~{%d}\r\n" % len(raw))
    assert reader.readline().startswith(b"+ ")
    sock.sendall(raw + b")\r\n")
    assert until_tag(reader, b"b")[-1].startswith(b"b OK [APPENDUID")
    stored = Message.objects.get()
    assert stored.seen and stored.subject == "Grüße"
    sock.close()


def test_utf8_login_with_a_literal_password(imap, mailbox):
    # RFC 6855 §5: UTF-8 user names and passwords arrive as literals before any ENABLE; a
    # wrong one is an ordinary failure, a right one logs in.
    sock, reader = open_raw(imap.port)
    wrong = "pässwörd".encode()
    sock.sendall(b"a LOGIN %s {%d+}\r\n%s\r\n" % (ADDRESS.encode(), len(wrong), wrong))
    assert until_tag(reader, b"a")[-1].startswith(b"a NO [AUTHENTICATIONFAILED]")
    password = PASSWORD.encode()
    sock.sendall(b"b LOGIN {%d+}\r\n%s {%d+}\r\n%s\r\n"
                 % (len(ADDRESS), ADDRESS.encode(), len(password), password))
    assert until_tag(reader, b"b")[-1].startswith(b"b OK")
    sock.close()


def test_imap4rev2_session_gets_rev2_responses(imap, mailbox):
    for i in range(3):
        delivery.deliver_to_mailboxes(make_message(subject=f"m{i}"), [mailbox.pk])
    folders.create_folder(mailbox, "Ärchiv")
    sock, reader = open_raw(imap.port)
    login(sock, reader)
    assert _command(sock, reader, b"e", b"ENABLE IMAP4rev2")[0] == b"* ENABLED IMAP4rev2\r\n"
    lines = _command(sock, reader, b"s", b"SELECT INBOX")
    text = b"".join(lines)
    # RFC 9051 §6.3.2: FLAGS, EXISTS, LIST, PERMANENTFLAGS, UIDNEXT, UIDVALIDITY; no RECENT.
    assert b"* 3 EXISTS\r\n" in text and b'* LIST () "/" "INBOX"\r\n' in text
    assert b"RECENT" not in text and b"[UNSEEN" not in text
    lines = _command(sock, reader, b"f", b"FETCH 1:* (FLAGS)")
    assert all(b"\\Recent" not in line for line in lines)
    # SEARCH answers with ESEARCH (RFC 9051 §6.4.4); nothing found is a bare ESEARCH.
    lines = _command(sock, reader, b"a", b"SEARCH ALL")
    assert lines[0] == b'* ESEARCH (TAG "a") ALL 1:3\r\n'
    lines = _command(sock, reader, b"b", b"UID SEARCH SUBJECT m1")
    assert lines[0] == b'* ESEARCH (TAG "b") UID ALL 2\r\n'
    assert _command(sock, reader, b"c", b"SEARCH DELETED")[0] == b'* ESEARCH (TAG "c")\r\n'
    lines = _command(sock, reader, b"d", b"SEARCH RETURN (COUNT) ALL")
    assert lines[0] == b'* ESEARCH (TAG "d") COUNT 3\r\n'
    # New mail is announced with EXISTS only.
    delivery.deliver_to_mailboxes(make_message(subject="m3"), [mailbox.pk])
    lines = _command(sock, reader, b"n", b"NOOP")
    assert b"* 4 EXISTS\r\n" in lines and not any(b"RECENT" in line for line in lines)
    # UTF-8 names, and OK [CLOSED] when another SELECT ends this one.
    lines = _command(sock, reader, b"x", 'EXAMINE "Ärchiv"'.encode())
    assert lines[0] == b"* OK [CLOSED] Previous folder closed\r\n"
    assert '* LIST () "/" "Ärchiv"\r\n'.encode() in lines
    for command in (b"NAMESPACE", b"UNSELECT", b'ID ("name" "test")', b"IDLE"):
        tag = b"i"
        if command == b"IDLE":
            sock.sendall(b"i IDLE\r\n")
            assert reader.readline().startswith(b"+ ")
            sock.sendall(b"DONE\r\n")
            assert until_tag(reader, tag)[-1].startswith(b"i OK")
            continue
        assert _command(sock, reader, tag, command)[-1].startswith(b"i OK"), command
    # RFC 9051 §7.1: a DELETE refused for subfolders says HASCHILDREN.
    assert _command(sock, reader, b"k", 'CREATE "Ärchiv/2024"'.encode())[-1].startswith(b"k OK")
    lines = _command(sock, reader, b"r", 'DELETE "Ärchiv"'.encode())
    assert lines[-1].startswith(b"r NO [HASCHILDREN]")
    sock.close()
    # An IMAP4rev1 session alongside keeps SEARCH and RECENT.
    client = logged_in(imap.port)
    typ, data = client.select("INBOX")
    assert client.untagged_responses.get("RECENT") is not None
    assert client.search(None, "ALL") == ("OK", [b"1 2 3 4"])
    client.logout()


def test_imap4rev2_status_size_and_binary_fetch(imap, mailbox):
    raw = make_message(subject="sized")
    delivery.deliver_to_mailboxes(raw, [mailbox.pk])
    client = imaplib.IMAP4("127.0.0.1", imap.port, timeout=20)
    client.login(ADDRESS, PASSWORD)
    assert client.enable("IMAP4rev2")[0] == "OK"
    typ, data = client.status("INBOX", "(MESSAGES SIZE DELETED)")
    assert data == [f'"INBOX" (MESSAGES 1 SIZE {len(raw)} DELETED 0)'.encode()]
    client.select("INBOX")
    typ, data = client.fetch("1", "(BINARY.SIZE[] BINARY.PEEK[])")
    assert data[0][0].startswith(f"1 (BINARY.SIZE[] {len(raw)} BINARY[]".encode())
    assert data[0][1] == raw
    client.logout()
