"""POP3 end to end with poplib and raw sockets: every command of RFC 1939 and RFC 2449 CAPA, the
maildrop snapshot, and UPDATE-state deletions seen by the other doors."""

import poplib
import threading

import pytest

from mailcore.events import subscribe
from mailcore.mime.wire import to_crlf
from mailcore.models import Folder, Message
from mailcore.services import accounts, delivery, folders
from tests.conftest import PASSWORD
from tests.factories import make_message
from tests.pop3.wire import RawClient

pytestmark = pytest.mark.django_db(transaction=True)


def received(lines: list[bytes]) -> bytes:
    """What poplib returned for RETR/TOP, as the bytes the client holds (CRLF line ends)."""
    return b"".join(line + b"\r\n" for line in lines)


def test_greeting_and_capabilities_follow_rfc_2449(pop3_server):
    client = pop3_server.connect()
    assert client.getwelcome() == b"+OK pop.example.test Correio POP3 server ready"
    assert client.capa() == {
        "TOP": [],
        "UIDL": [],
        "RESP-CODES": [],
        "PIPELINING": [],
        "AUTH-RESP-CODE": [],
        "USER": [],
        "SASL": ["PLAIN"],
        "STLS": [],
        "IMPLEMENTATION": ["Correio"],
    }
    assert client.quit() == b"+OK bye"


def test_capabilities_in_the_transaction_state_drop_login_and_stls(pop3_server, mailbox):
    client = pop3_server.login()
    assert set(client.capa()) == {
        "TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE", "IMPLEMENTATION"
    }
    client.quit()


def test_stat_list_and_retr_agree_byte_for_byte(pop3_server, deliver):
    raws = [
        make_message(subject="first"),
        b"Subject: bare LFs\n\nline one\nline two\n",
        b"Subject: no final newline\r\n\r\nlast line",
        make_message(subject="attached", attachments=[("a.bin", bytes(range(256)) * 40,
                                                       "application/octet-stream")]),
    ]
    deliver(*raws)
    client = pop3_server.login()
    wires = [to_crlf(raw) for raw in raws]
    assert client.stat() == (4, sum(len(w) for w in wires))
    status, listing, _ = client.list()
    assert status == f"+OK 4 messages ({sum(len(w) for w in wires)} octets)".encode()
    assert listing == [f"{n} {len(w)}".encode() for n, w in enumerate(wires, 1)]
    for n, wire in enumerate(wires, 1):
        assert client.list(n) == f"+OK {n} {len(wire)}".encode()
        status, lines, octets = client.retr(n)
        assert status == f"+OK {len(wire)} octets".encode()
        assert received(lines) == wire
    client.quit()


def test_lines_starting_with_a_dot_are_byte_stuffed_on_the_wire(pop3_server, deliver):
    raw = b"Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\nnot.leading\r\n.\r\nend\r\n"
    deliver(raw)
    wire = RawClient(pop3_server.port)
    wire.line()
    wire.command(b"USER demo@example.test")
    assert wire.command(b"PASS " + PASSWORD.encode()).startswith(b"+OK")
    assert wire.command(b"RETR 1") == f"+OK {len(raw)} octets\r\n".encode()
    assert wire.multiline() == (
        b"Subject: dots\r\n\r\n..\r\n...\r\n..leading\r\nnot.leading\r\n..\r\nend\r\n.\r\n"
    )
    assert wire.command(b"TOP 1 2") == b"+OK\r\n"
    assert wire.multiline() == b"Subject: dots\r\n\r\n..\r\n...\r\n.\r\n"
    wire.close()
    client = pop3_server.login()
    assert received(client.retr(1)[1]) == raw
    client.quit()


def test_top_sends_headers_and_zero_or_n_body_lines(pop3_server, deliver):
    raw = make_message(subject="top", body="one\ntwo\nthree\n")
    deliver(raw)
    header, _, body = raw.partition(b"\r\n\r\n")
    client = pop3_server.login()
    assert received(client.top(1, 0)[1]) == header + b"\r\n\r\n"
    assert received(client.top(1, 2)[1]) == header + b"\r\n\r\none\r\ntwo\r\n"
    assert received(client.top(1, 500)[1]) == raw
    for bad in ["1 -1", "1 x", "1", "2 0"]:
        with pytest.raises(poplib.error_proto):
            client._longcmd(f"TOP {bad}")
    client.quit()


def test_uidl_values_are_stable_across_sessions_and_other_deletions(pop3_server, deliver, inbox):
    deliver(*(make_message(subject=f"m{n}") for n in range(4)))
    client = pop3_server.login()
    _, first, _ = client.uidl()
    assert first == [f"{n} {inbox.uidvalidity}.{n}".encode() for n in range(1, 5)]
    assert client.uidl(3) == f"+OK 3 {inbox.uidvalidity}.3".encode()
    client.dele(1)
    assert client.uidl()[1][0].startswith(b"2 ")
    with pytest.raises(poplib.error_proto, match="already deleted"):
        client.uidl(1)
    client.quit()
    # Another door removes message 3 (UID 3); the rest keep their UIDLs.
    folders.expunge(inbox, [3], only_deleted=False)
    client = pop3_server.login()
    assert client.uidl()[1] == [f"1 {inbox.uidvalidity}.2".encode(),
                                f"2 {inbox.uidvalidity}.4".encode()]
    client.quit()


def test_dele_and_rset_only_mark_and_quit_deletes(pop3_server, deliver, inbox):
    deliver(*(make_message(subject=f"m{n}") for n in range(3)))
    client = pop3_server.login()
    size_2 = int(client.list(2).split()[2])
    total = client.stat()[1]
    assert client.dele(2) == b"+OK message 2 deleted"
    assert client.stat() == (2, total - size_2)
    assert client.list()[1] == [line for line in client.list()[1] if not line.startswith(b"2 ")]
    for action in (client.retr, client.dele, client.list):
        with pytest.raises(poplib.error_proto, match="message 2 already deleted"):
            action(2)
    assert client.rset() == f"+OK maildrop has 3 messages ({total} octets)".encode()
    assert client.stat() == (3, total)
    client.dele(1)
    client.dele(3)
    assert Message.objects.filter(folder=inbox).count() == 3  # nothing happens before QUIT
    assert client.quit() == b"+OK pop.example.test signing off (1 messages left)"
    assert list(Message.objects.filter(folder=inbox).values_list("uid", flat=True)) == [2]
    inbox.refresh_from_db()
    assert inbox.message_count == 1


def test_deletions_at_quit_are_expunges_other_doors_see(pop3_server, deliver, inbox, mailbox):
    """IMAP learns removals from changes since a mod-sequence (VANISHED, RFC 7162) and from
    change events (IDLE); both see POP3's deletions."""
    deliver(*(make_message(subject=f"m{n}") for n in range(3)))
    inbox.refresh_from_db()
    before = inbox.highestmodseq
    events, seen = [], threading.Event()
    unsubscribe = subscribe(mailbox.pk, lambda event: (events.append(event), seen.set()))
    try:
        client = pop3_server.login()
        client.dele(1)
        client.dele(3)
        client.quit()
        assert seen.wait(10)
    finally:
        unsubscribe()
    assert [(e.folder_id, e.kind) for e in events] == [(inbox.pk, "expunge")]
    changes = folders.changes_since(inbox, before)
    assert changes.expunged == [1, 3] and changes.messages == []
    mailbox.refresh_from_db()
    assert mailbox.used_bytes == Message.objects.get(folder=inbox).size


def test_a_dropped_connection_deletes_nothing_and_frees_the_maildrop(pop3_server, deliver, inbox):
    deliver(*(make_message(subject=f"m{n}") for n in range(2)))
    wire = RawClient(pop3_server.port)
    wire.line()
    wire.command(b"USER demo@example.test")
    wire.command(b"PASS " + PASSWORD.encode())
    assert wire.command(b"DELE 1") == b"+OK message 1 deleted\r\n"
    assert wire.command(b"DELE 2") == b"+OK message 2 deleted\r\n"
    wire.close()
    # The next session gets the lock at once (the dropped one released it) and both messages.
    for _ in range(50):
        try:
            client = pop3_server.login()
            break
        except poplib.error_proto as exc:
            assert b"[IN-USE]" in exc.args[0]
            threading.Event().wait(0.05)
    assert client.stat()[0] == 2
    client.quit()
    assert Message.objects.filter(folder=inbox).count() == 2


def test_the_maildrop_is_the_inbox_as_of_login(pop3_server, deliver, mailbox):
    deliver(make_message(subject="before"))
    archive = Folder.objects.get(mailbox=mailbox, role="archive")
    delivery.append_message(archive, make_message(subject="not in the INBOX"))
    client = pop3_server.login()
    deliver(make_message(subject="during"))
    assert client.stat()[0] == 1
    assert client.list()[1] == [client.list(1)[4:]]
    with pytest.raises(poplib.error_proto, match="no such message"):
        client.retr(2)
    client.quit()
    client = pop3_server.login()
    assert client.stat()[0] == 2
    assert b"Subject: during" in client.retr(2)[1]
    client.quit()


def test_retr_of_a_message_another_door_expunged_is_an_error(pop3_server, deliver, inbox):
    deliver(make_message(subject="a"), make_message(subject="b"))
    client = pop3_server.login()
    folders.expunge(inbox, [1], only_deleted=False)
    with pytest.raises(poplib.error_proto, match="removed by another session"):
        client.retr(1)
    client.dele(1)
    assert client.retr(2)[0].startswith(b"+OK")
    assert client.quit().startswith(b"+OK")
    assert list(Message.objects.filter(folder=inbox).values_list("uid", flat=True)) == [2]


def test_noop_empty_maildrop_and_commands_in_the_wrong_state(start_pop3, mailbox):
    client = start_pop3(max_bad_commands=100).connect()
    # NOOP is a TRANSACTION-state command (RFC 1939 §5), refused before login (issue 15).
    with pytest.raises(poplib.error_proto, match="not valid in this state"):
        client.noop()
    for command in ("STAT", "LIST", "RETR 1", "DELE 1", "RSET", "TOP 1 0", "UIDL"):
        with pytest.raises(poplib.error_proto, match="not valid in this state"):
            client._shortcmd(command)
    client.user("demo@example.test")
    assert client.pass_(PASSWORD) == b"+OK maildrop has 0 messages (0 octets)"
    assert client.stat() == (0, 0)
    assert client.list()[:2] == (b"+OK 0 messages (0 octets)", [])
    assert client.uidl()[1] == []
    for command in ("USER x", "PASS y", "STLS", "AUTH PLAIN"):
        with pytest.raises(poplib.error_proto, match="not valid in this state"):
            client._shortcmd(command)
    assert client.noop() == b"+OK"
    for command in ("LIST 1", "LIST 0", "RETR 1", "DELE 1", "UIDL 1", "TOP 1 0"):
        with pytest.raises(poplib.error_proto, match="no such message"):
            client._shortcmd(command)
    for command in ("LIST 1 2", "STAT now", "RETR", "DELE", "NOOP x", "TOP 1"):
        with pytest.raises(poplib.error_proto, match="wrong number of arguments"):
            client._shortcmd(command)
    client.quit()


def test_pipelined_commands_are_answered_in_order(pop3_server, deliver):
    raw = make_message(subject="pipelined")
    deliver(raw)
    wire = RawClient(pop3_server.port)
    wire.line()
    wire.send(b"USER demo@example.test\r\nPASS " + PASSWORD.encode()
              + b"\r\nSTAT\r\nRETR 1\r\nDELE 1\r\nSTAT\r\nRSET\r\nQUIT\r\n")
    assert wire.line() == b"+OK send PASS\r\n"
    assert wire.line().startswith(b"+OK maildrop has 1 messages")
    assert wire.line() == f"+OK 1 {len(raw)}\r\n".encode()
    assert wire.line() == f"+OK {len(raw)} octets\r\n".encode()
    assert wire.multiline() == raw + b".\r\n"
    assert wire.line() == b"+OK message 1 deleted\r\n"
    assert wire.line() == b"+OK 0 0\r\n"
    assert wire.line().startswith(b"+OK maildrop has 1 messages")
    assert wire.line().startswith(b"+OK pop.example.test signing off (1 messages left)")
    assert wire.closed()


def test_another_mailbox_is_out_of_reach(pop3_server, deliver, make_mailbox):
    deliver(make_message(subject="for demo only"))
    make_mailbox("other@example.test")
    client = pop3_server.login("other@example.test")
    assert client.stat() == (0, 0)
    client.quit()
    assert accounts.get_mailbox("demo@example.test").messages.count() == 1


def test_retrieving_in_order_past_the_read_ahead_window_returns_every_message_exactly(
    pop3_server, deliver, inbox
):
    raws = [make_message(subject=f"n{n}", body=f"message {n}\n" * (n % 7 + 1)) for n in range(70)]
    deliver(*raws)
    client = pop3_server.login()
    client.retr(1)
    assert received(client.retr(2)[1]) == raws[1]  # reads ahead from here on
    client.dele(3)
    with pytest.raises(poplib.error_proto, match="message 3 already deleted"):
        client.retr(3)
    folders.expunge(inbox, [5], only_deleted=False)  # after the read-ahead: still served
    for n in [4, *range(5, 71)]:
        assert received(client.retr(n)[1]) == raws[n - 1]
    client.quit()
    assert Message.objects.filter(folder=inbox).count() == 68

