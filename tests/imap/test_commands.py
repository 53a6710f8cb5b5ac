"""Every RFC 3501 command against a real listener, spoken by imaplib, with results checked
through the service layer."""

import base64
import imaplib
import socket
import time

import pytest

from mailcore.models import Folder, Message
from mailcore.services import delivery, folders
from tests.conftest import PASSWORD
from tests.factories import make_message
from tests.imap.conftest import ADDRESS

pytestmark = pytest.mark.django_db(transaction=True)


def deliver(mailbox, count=1, **kwargs):
    for i in range(count):
        raw = make_message(subject=kwargs.pop("subject", f"Message {i}"), **kwargs)
        delivery.deliver_to_mailboxes(raw, [mailbox.pk])


def refused(call, code: str) -> None:
    """The command fails (NO, or imaplib's error for NO/BAD) with the response code."""
    try:
        typ, data = call()
    except imaplib.IMAP4.error as error:
        assert code in str(error)
        return
    assert typ == "NO", (typ, data)
    assert code in data[-1].decode(), data


def raw_session(port, host="127.0.0.1"):
    sock = socket.create_connection((host, port), timeout=10)
    reader = sock.makefile("rb")
    greeting = reader.readline()
    assert greeting.startswith(b"* OK")
    return sock, reader


def exchange(sock, reader, line: bytes, tag: bytes = b"t1") -> list[bytes]:
    sock.sendall(line + b"\r\n")
    lines = []
    while True:
        got = reader.readline()
        assert got, "connection closed"
        lines.append(got)
        if got.startswith(tag + b" ") or got.startswith(b"* BYE"):
            return lines


def test_greeting_and_capability_announce_the_extensions(connect):
    client = connect(login=False)
    caps = set(client.capabilities)
    for cap in ("IMAP4REV1", "IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE", "NAMESPACE", "ID",
                "ENABLE", "LITERAL+", "UNSELECT", "CHILDREN", "SASL-IR", "STARTTLS",
                "AUTH=PLAIN"):
        assert cap in caps
    assert "LOGINDISABLED" not in caps  # loopback may log in without TLS
    typ, data = client.noop()
    assert typ == "OK"


def test_login_with_a_wrong_password_is_refused_and_counted(connect):
    client = connect(login=False)
    refused(lambda: client.login(ADDRESS, "wrong"), "AUTHENTICATIONFAILED")
    from mailcore.models import LoginThrottle

    record = LoginThrottle.objects.get(login=ADDRESS, client="127.0.0.1")
    assert (record.attempts, record.failed) == (1, True)
    assert client.login(ADDRESS, PASSWORD)[0] == "OK"


def test_plaintext_login_is_disabled_without_tls_when_the_peer_is_not_trusted(
    start_imap, mailbox, client_tls
):
    listener = start_imap(allow_plaintext=lambda ip: False)
    client = imaplib.IMAP4("127.0.0.1", listener.ports[0], timeout=10)
    assert "LOGINDISABLED" in client.capabilities
    assert "AUTH=PLAIN" not in client.capabilities
    refused(lambda: client.login(ADDRESS, PASSWORD), "PRIVACYREQUIRED")
    client.starttls(ssl_context=client_tls)
    caps = client.capability()[1][0].split()
    assert b"LOGINDISABLED" not in caps and b"STARTTLS" not in caps
    assert client.login(ADDRESS, PASSWORD)[0] == "OK"
    client.logout()


def test_implicit_tls_port_serves_imaps(start_imap, mailbox, client_tls):
    listener = start_imap(allow_plaintext=lambda ip: False)
    client = imaplib.IMAP4_SSL("127.0.0.1", listener.ports[1], ssl_context=client_tls,
                               timeout=10)
    assert client.login(ADDRESS, PASSWORD)[0] == "OK"
    assert client.select("INBOX")[0] == "OK"
    client.logout()


def test_starttls_with_pipelined_plaintext_is_refused(imap):
    sock, reader = raw_session(imap.ports[0])
    sock.sendall(b"t1 STARTTLS\r\nt2 LOGIN demo@example.test x\r\n")
    assert reader.readline().startswith(b"* BYE")
    sock.close()


def test_authenticate_plain_with_initial_response_and_with_continuation(imap):
    token = base64.b64encode(f"\0{ADDRESS}\0{PASSWORD}".encode())
    sock, reader = raw_session(imap.ports[0])
    lines = exchange(sock, reader, b"t1 AUTHENTICATE PLAIN " + token)
    assert lines[-1].startswith(b"t1 OK")
    sock.close()
    sock, reader = raw_session(imap.ports[0])
    sock.sendall(b"t1 AUTHENTICATE PLAIN\r\n")
    assert reader.readline().startswith(b"+")
    lines = exchange(sock, reader, token)
    assert lines[-1].startswith(b"t1 OK")
    sock.close()
    sock, reader = raw_session(imap.ports[0])
    sock.sendall(b"t1 AUTHENTICATE PLAIN\r\n")
    reader.readline()
    assert exchange(sock, reader, b"*")[-1].startswith(b"t1 BAD")
    assert exchange(sock, reader, b"t2 AUTHENTICATE CRAM-MD5", b"t2")[-1].startswith(b"t2 NO")
    sock.close()


def test_commands_need_the_right_state(imap):
    sock, reader = raw_session(imap.ports[0])
    assert b"not allowed" in exchange(sock, reader, b"t1 SELECT INBOX")[-1]
    exchange(sock, reader, f"t0 LOGIN {ADDRESS} \"{PASSWORD}\"".encode(), b"t0")
    assert b"not allowed" in exchange(sock, reader, b"t1 FETCH 1 FLAGS")[-1]
    assert b"t1 BAD unknown command FROB" in exchange(sock, reader, b"t1 FROB")[-1]
    assert exchange(sock, reader, b"t1 LOGIN a b")[-1].startswith(b"t1 BAD")
    sock.close()


def test_select_reports_counts_flags_and_uid_identity(connect, mailbox, inbox):
    deliver(mailbox, 3)
    folders.get_folder(mailbox, "INBOX")
    client = connect()
    typ, data = client.select("INBOX")
    assert (typ, data) == ("OK", [b"3"])
    assert client.untagged_responses["RECENT"] == [b"3"]
    inbox.refresh_from_db()
    assert client.untagged_responses["UIDVALIDITY"] == [str(inbox.uidvalidity).encode()]
    assert client.untagged_responses["UIDNEXT"] == [b"4"]
    assert client.untagged_responses["UNSEEN"] == [b"1"]
    assert b"\\*" in client.untagged_responses["PERMANENTFLAGS"][0]
    second = connect()
    second.select("INBOX")
    assert second.untagged_responses["RECENT"] == [b"0"]  # the first session got \Recent


def test_examine_is_read_only(connect, mailbox):
    deliver(mailbox, 1)
    client = connect()
    client.select("INBOX", readonly=True)
    assert client.fetch("1", "(BODY[])")[0] == "OK"
    assert not Message.objects.get().seen
    refused(lambda: client.store("1", "+FLAGS", "\\Flagged"), "READ-ONLY")


def test_create_list_rename_delete_and_subscriptions(connect, mailbox):
    client = connect()
    assert client.create("Projects/2024/")[0] == "OK"
    assert client.create("Caf&AOk-")[0] == "OK"
    assert Folder.objects.filter(mailbox=mailbox, name="Café").exists()
    typ, listing = client.list('""', "*")
    names = [line.rsplit(b" ", 1)[1] for line in listing]
    assert b'"Caf&AOk-"' in names and b'"Projects/2024"' in names
    projects = next(line for line in listing if line.endswith(b'"Projects"'))
    assert b"\\HasChildren" in projects
    sent = next(line for line in listing if line.endswith(b'"Sent"'))
    assert b"\\Sent" in sent
    typ, top = client.list('""', "%")
    assert not any(b"Projects/2024" in line for line in top)
    assert client.list("Projects/", "%")[1][0].endswith(b'"Projects/2024"')
    assert client.list('""', "inbox")[1][0].endswith(b'"INBOX"')
    assert client.list('""', '""')[1] == [b'(\\Noselect) "/" ""']
    assert client.subscribe("Projects")[0] == "OK"
    assert client.rename("Projects", "Work")[0] == "OK"
    assert Folder.objects.filter(mailbox=mailbox, name="Work/2024").exists()
    assert client.unsubscribe("Work/2024")[0] == "OK"
    lsub = client.lsub('""', "*")[1]
    assert not any(line.endswith(b'"Work/2024"') for line in lsub)
    assert any(line.endswith(b'"Work"') for line in lsub)  # the subscription followed RENAME
    assert client.subscribe("Work/2024")[0] == "OK"
    refused(lambda: client.delete("Work"), "HASCHILDREN")  # RFC 9051 §7.1
    assert client.delete("Work/2024")[0] == "OK"
    refused(lambda: client.delete("Work/2024"), "NONEXISTENT")
    refused(lambda: client.create("Work"), "ALREADYEXISTS")
    refused(lambda: client.delete("Trash"), "CANNOT")


def test_renaming_inbox_moves_its_messages_and_leaves_it_empty(connect, mailbox):
    deliver(mailbox, 2)
    client = connect()
    assert client.rename("INBOX", "Old")[0] == "OK"
    assert client.select("INBOX")[1] == [b"0"]
    assert client.select("Old")[1] == [b"2"]


def test_names_are_private_to_each_user(connect, make_mailbox):
    other = make_mailbox("other@example.test")
    folders.create_folder(other, "Secret")
    client = connect()
    refused(lambda: client.select("Secret"), "NONEXISTENT")
    assert client.create("../other@example.test/Secret")[0] == "NO"
    assert client.create("other@example.test/Secret")[0] == "OK"
    names = [line.rsplit(b" ", 1)[1] for line in client.list('""', "*")[1]]
    assert b'"other@example.test/Secret"' in names
    assert not Folder.objects.filter(mailbox=other, name__startswith="other@").exists()


def test_status_reports_without_selecting(connect, mailbox):
    deliver(mailbox, 2)
    client = connect()
    typ, data = client.status("INBOX", "(MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)")
    inbox = Folder.objects.get(mailbox=mailbox, name="INBOX")
    assert data[0] == (
        f'"INBOX" (MESSAGES 2 RECENT 2 UIDNEXT 3 UIDVALIDITY {inbox.uidvalidity} UNSEEN 2)'
    ).encode()
    with pytest.raises(imaplib.IMAP4.error):
        client.status("INBOX", "(BOGUS)")


def test_append_stores_flags_date_and_answers_appenduid(connect, mailbox):
    client = connect()
    raw = make_message(subject="Appended")
    typ, data = client.append("Drafts", "(\\Draft \\Seen $Work)",
                              imaplib.Time2Internaldate(time.mktime((2020, 5, 17, 10, 0, 0, 0,
                                                                     0, -1))), raw)
    drafts = Folder.objects.get(mailbox=mailbox, name="Drafts")
    assert data == [f"[APPENDUID {drafts.uidvalidity} 1] APPEND completed".encode()]
    message = Message.objects.get(folder=drafts)
    assert message.draft and message.seen and message.keywords == ["$Work"]
    assert message.internal_date.year == 2020
    assert bytes(message.blob.data) == raw
    refused(lambda: client.append("Nowhere", None, None, raw), "TRYCREATE")


def test_append_with_a_non_synchronizing_literal(imap):
    sock, reader = raw_session(imap.ports[0])
    exchange(sock, reader, f"t0 LOGIN {ADDRESS} \"{PASSWORD}\"".encode(), b"t0")
    raw = make_message(subject="literal plus")
    sock.sendall(b"t1 APPEND INBOX {%d+}\r\n" % len(raw) + raw + b"\r\n")
    line = reader.readline()
    assert line.startswith(b"t1 OK [APPENDUID")
    assert Message.objects.get().subject == "literal plus"
    sock.close()


def test_append_to_the_selected_folder_announces_exists(connect, mailbox):
    client = connect()
    client.select("INBOX")
    client.append("INBOX", None, None, make_message())
    assert client.untagged_responses.get("EXISTS")[-1] == b"1"


def test_fetch_items_of_a_simple_message(connect, mailbox):
    raw = make_message(subject="Fetch me", body="Line one\nLine two\n")
    delivery.deliver_to_mailboxes(raw, [mailbox.pk])
    client = connect()
    client.select("INBOX")
    typ, data = client.fetch("1", "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY)")
    text = data[0]
    assert b"UID 1" in text and b"FLAGS (\\Recent)" in text
    assert f"RFC822.SIZE {len(raw)}".encode() in text
    assert b'"Fetch me"' in text and b'(("Alice Example" NIL "alice" "remote.test"))' in text
    assert b'BODY ("text" "plain" ("charset" "utf-8") NIL NIL "7bit"' in text
    assert imaplib.Internaldate2tuple(text) is not None
    typ, data = client.fetch("1", "(RFC822.HEADER)")
    assert data[0][1] == raw[: raw.index(b"\r\n\r\n") + 4]
    assert not Message.objects.get().seen
    typ, data = client.fetch("1", "(RFC822.TEXT)")
    assert data[0][1] == raw[raw.index(b"\r\n\r\n") + 4 :]
    assert Message.objects.get().seen
    typ, data = client.fetch("1", "(RFC822)")
    assert data[0][1] == raw
    typ, data = client.fetch("1", "(BODY.PEEK[]<5.10> BODY.PEEK[HEADER.FIELDS.NOT (Date "
                                  "Message-ID From To)])")
    assert data[0][1] == raw[5:15]
    assert data[1][1].startswith(b"Subject: Fetch me\r\n") and b"Date:" not in data[1][1]


def test_fetch_sets_seen_and_reports_the_new_flags(connect, mailbox):
    deliver(mailbox, 1)
    client = connect()
    client.select("INBOX")
    typ, data = client.fetch("1", "(BODY[TEXT])")
    assert b"\\Seen" in data[-1]
    assert Message.objects.get().seen


def test_fetch_of_message_numbers_beyond_the_mailbox_is_bad(connect, mailbox):
    deliver(mailbox, 2)
    client = connect()
    client.select("INBOX")
    with pytest.raises(imaplib.IMAP4.error, match="sequence"):
        client.fetch("3", "(FLAGS)")
    assert client.uid("FETCH", "1:4294967295", "(FLAGS)")[1][1].startswith(b"2 (UID 2")


def test_store_replaces_adds_and_removes_flags_and_keywords(connect, mailbox):
    deliver(mailbox, 3)
    client = connect()
    client.select("INBOX")
    typ, data = client.store("1:2", "+FLAGS", "(\\Flagged $Important)")
    assert data == [b"1 (FLAGS (\\Flagged \\Recent $Important))",
                    b"2 (FLAGS (\\Flagged \\Recent $Important))"]
    typ, data = client.uid("STORE", "2", "-FLAGS", "(\\Flagged)")
    assert data == [b"2 (FLAGS (\\Recent $Important) UID 2)"]
    typ, data = client.store("3", "FLAGS.SILENT", "(\\Answered)")
    assert data == [None]
    client.select("INBOX")
    assert b"$Important" in client.untagged_responses["FLAGS"][-1]
    flags = {m.uid: (m.flagged, m.answered, m.keywords) for m in Message.objects.all()}
    assert flags == {1: (True, False, ["$Important"]), 2: (False, False, ["$Important"]),
                     3: (False, True, [])}


def test_copy_and_move_answer_copyuid_and_move_expunges(connect, mailbox):
    deliver(mailbox, 4)
    client = connect()
    client.select("INBOX")
    archive = Folder.objects.get(mailbox=mailbox, name="Archive")
    typ, data = client.copy("2:3", "Archive")
    assert data == [f"[COPYUID {archive.uidvalidity} 2:3 1:2] COPY completed".encode()]
    refused(lambda: client.copy("1", "Nowhere"), "TRYCREATE")
    trash = Folder.objects.get(mailbox=mailbox, name="Trash")
    typ, data = client._simple_command("MOVE", "1,4", "Trash")
    assert typ == "OK"
    assert client.untagged_responses["EXPUNGE"] == [b"1", b"3"]
    assert client.untagged_responses["OK"][-1] == (
        f"[COPYUID {trash.uidvalidity} 1,4 1:2] Moved".encode()
    )
    assert sorted(Message.objects.filter(folder__name="INBOX").values_list("uid", flat=True)) == [
        2, 3]
    assert client.fetch("1:*", "(UID)")[1] == [b"1 (UID 2)", b"2 (UID 3)"]


def test_expunge_uid_expunge_close_and_unselect(connect, mailbox):
    deliver(mailbox, 5)
    client = connect()
    client.select("INBOX")
    client.store("1,2,4", "+FLAGS.SILENT", "\\Deleted")
    typ, data = client.uid("EXPUNGE", "4:5")
    assert client.untagged_responses.pop("EXPUNGE", None) == [b"4"]
    typ, data = client.expunge()
    assert data == [b"1", b"1"]
    assert sorted(Message.objects.values_list("uid", flat=True)) == [3, 5]
    client.store("1", "+FLAGS.SILENT", "\\Deleted")
    assert client._simple_command("UNSELECT")[0] == "OK"
    assert Message.objects.count() == 2
    client.select("INBOX")
    assert client.close()[0] == "OK"
    assert list(Message.objects.values_list("uid", flat=True)) == [5]
    with pytest.raises(imaplib.IMAP4.error):
        client.expunge()


def test_search_keys(connect, mailbox):
    delivery.deliver_to_mailboxes(make_message(subject="Invoice March", sender="bob@shop.test",
                                               body="Total 42 EUR\n",
                                               extra_headers={"X-Mailer": "Acme"}),
                                  [mailbox.pk])
    delivery.deliver_to_mailboxes(make_message(subject="=?utf-8?q?Caf=C3=A9_menu?=",
                                               body="Soupe du jour: lentilles\n",
                                               date="Mon, 01 Jan 2018 10:00:00 +0000"),
                                  [mailbox.pk])
    delivery.deliver_to_mailboxes(make_message(subject="Photos", body="Grüße aus Köln\n",
                                               attachments=[("a.bin", b"\0" * 100,
                                                             "application/octet-stream")]),
                                  [mailbox.pk])
    client = connect()
    client.select("INBOX")
    client.store("1", "+FLAGS", "(\\Flagged $Paid)")
    client.store("2", "+FLAGS", "(\\Seen)")

    def search(*criteria, uid=False):
        if uid:
            return client.uid("SEARCH", *criteria)[1][0].split()
        return client.search(None, *criteria)[1][0].split()

    assert search("ALL") == [b"1", b"2", b"3"]
    assert search("FROM", "bob") == [b"1"]
    assert search("SUBJECT", "MENU") == [b"2"]
    assert search("HEADER", "X-Mailer", "acme") == [b"1"]
    assert search("BODY", "lentilles") == [b"2"]
    assert search("TEXT", "invoice") == [b"1"]
    client.literal = "grüße".encode()
    assert client.search("UTF-8", "BODY")[1][0].split() == [b"3"]
    assert search("FLAGGED") == [b"1"]
    assert search("KEYWORD", "$Paid") == [b"1"]
    assert search("UNKEYWORD", "$Paid") == [b"2", b"3"]
    assert search("SEEN") == [b"2"]
    assert search("UNSEEN", "NOT", "FLAGGED") == [b"3"]
    assert search("OR", "SEEN", "FLAGGED") == [b"1", b"2"]
    assert search("SENTBEFORE", "1-Jan-2019") == [b"2"]
    assert search("SENTON", "1-Jan-2018") == [b"2"]
    assert search("SINCE", "1-Jan-2000") == [b"1", b"2", b"3"]
    assert search("BEFORE", "1-Jan-2000") == []
    assert search("LARGER", "600") == [b"3"]
    assert search("SMALLER", "600") == [b"1", b"2"]
    assert search("2:*") == [b"2", b"3"]
    assert search("UID", "1,3") == [b"1", b"3"]
    assert search("NEW") == [b"1", b"3"]
    assert search("RECENT") == [b"1", b"2", b"3"]
    assert search("OLD") == []
    assert search("(OR FROM bob SUBJECT photos) NOT 1") == [b"3"]
    assert search("TEXT", "photos", uid=True) == [b"3"]
    refused(lambda: client.search("KOI8-R", "TEXT", "x"), "BADCHARSET")
    with pytest.raises(imaplib.IMAP4.error):
        client.search(None, "FROBNICATE")


def test_namespace_id_enable_check_and_noop(connect):
    client = connect()
    assert client.namespace()[1] == [b'(("" "/")) NIL NIL']
    typ, data = client.xatom("ID", '("name" "pytest")')
    assert typ == "OK" and b'"Correio"' in client.untagged_responses["ID"][0]
    assert client.enable("CONDSTORE")[0] == "OK"
    client.select("INBOX")
    assert client.check()[0] == "OK"
    assert client.noop()[0] == "OK"


def test_logout_says_bye(connect):
    client = connect()
    assert client.logout()[0] == "BYE"
