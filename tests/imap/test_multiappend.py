"""APPEND and MULTIAPPEND (RFC 3502) against a real listener: several messages in one command,
all or none, each with its flags and internal date; concurrent APPENDs from several sessions
share one group commit (issue 15); the memory and octet bounds of a many-message command."""

import threading

import pytest

from mailcore.models import Folder, Mailbox, Message
from mailcore.protocols.imap.handlers import authenticated
from mailcore.services import delivery, folders
from tests.factories import make_message
from tests.imap.test_hostile import logged_in, login, open_raw, until_tag

pytestmark = pytest.mark.django_db(transaction=True)


def _multiappend(sock, reader, tag: bytes, folder: bytes, parts: list[tuple[bytes, bytes]]):
    """Send one APPEND with several (options, message) parts as LITERAL+ literals."""
    data = [tag + b" APPEND " + folder]
    for options, raw in parts:
        data.append(b" " + options + (b" " if options else b"") + b"{%d+}\r\n" % len(raw) + raw)
    sock.sendall(b"".join(data) + b"\r\n")
    return until_tag(reader, tag)


def test_multiappend_stores_every_message_with_its_flags_and_date(imap, mailbox):
    client = logged_in(imap.ports[0])
    assert "MULTIAPPEND" in client.capability()[1][0].decode().split()
    client.logout()
    sock, reader = open_raw(imap.ports[0])
    login(sock, reader)
    raws = [make_message(subject=f"multi {i}") for i in range(3)]
    lines = _multiappend(sock, reader, b"a", b"INBOX", [
        (b"(\\Seen $Work)", raws[0]),
        (b'"17-Jul-1996 02:44:25 -0700"', raws[1]),
        (b'(\\Flagged) "01-Jan-2020 00:00:00 +0000"', raws[2]),
    ])
    inbox = Folder.objects.get(mailbox=mailbox, role="inbox")
    assert lines[-1].decode().startswith(f"a OK [APPENDUID {inbox.uidvalidity} 1:3]")
    rows = list(Message.objects.filter(folder=inbox).order_by("uid"))
    assert [bytes(row.blob.data) for row in rows] == raws
    assert rows[0].seen and rows[0].keywords == ["$Work"] and not rows[1].seen
    assert rows[1].internal_date.year == 1996 and rows[2].internal_date.year == 2020
    assert rows[2].flagged
    inbox.refresh_from_db()
    assert inbox.message_count == 3 and inbox.unseen_count == 2
    sock.close()


def test_multiappend_is_all_or_none(imap, mailbox):
    sock, reader = open_raw(imap.ports[0])
    login(sock, reader)
    good = make_message(subject="good")
    # An empty message in the middle refuses the whole command (RFC 3502 §6.3.11).
    lines = _multiappend(sock, reader, b"a", b"INBOX", [(b"", good), (b"", b""), (b"", good)])
    assert lines[-1].startswith(b"a NO")
    # A folder that does not exist: TRYCREATE, nothing stored.
    lines = _multiappend(sock, reader, b"b", b"Nowhere", [(b"", good), (b"", good)])
    assert lines[-1].startswith(b"b NO [TRYCREATE]")
    # Over quota with the second message: refused before it is read, nothing stored.
    Mailbox.objects.filter(pk=mailbox.pk).update(quota=len(good) + 10)
    lines = _multiappend(sock, reader, b"c", b"INBOX", [(b"", good), (b"", good)])
    assert lines[-1].startswith(b"c NO [OVERQUOTA]")
    sock.sendall(b"d NOOP\r\n")
    assert until_tag(reader, b"d")[-1].startswith(b"d OK")
    assert Message.objects.count() == 0
    assert Mailbox.objects.get(pk=mailbox.pk).used_bytes == 0
    sock.close()


def test_many_small_messages_are_spooled_and_the_command_total_is_bounded(start_imap, mailbox):
    listener = start_imap({"max_message_size": 100_000}, max_command=32 * 1024, spool_threshold=16 * 1024,
                          max_append_total=600 * 1024)
    sock, reader = open_raw(listener.ports[0])
    login(sock, reader)
    raws = [make_message(subject=f"small {i}", body="x" * 8000 + "\n") for i in range(40)]
    lines = _multiappend(sock, reader, b"a", b"INBOX", [(b"", raw) for raw in raws])
    assert lines[-1].startswith(b"a OK [APPENDUID"), lines[-1]
    stored = Message.objects.order_by("uid")
    assert [bytes(m.blob.data) for m in stored] == raws
    # Beyond the command's total, the client is told and the session ends (LITERAL+ data
    # already on its way cannot be skipped safely, RFC 7888 §4).
    lines = _multiappend(sock, reader, b"b", b"INBOX", [(b"", raws[0])] * 100)
    assert lines[-1].startswith(b"* BYE [TOOBIG]")
    assert Message.objects.count() == 40
    sock.close()


def test_concurrent_appends_from_several_sessions_share_commits(imap, mailbox):
    sessions = 6
    earlier = set(map(id, authenticated._COMMITTERS.values()))
    barrier = threading.Barrier(sessions)
    results = []

    def worker(i: int) -> None:
        sock, reader = open_raw(imap.ports[0])
        login(sock, reader)
        barrier.wait()
        for n in range(5):
            raws = [make_message(subject=f"s{i} n{n} m{m}") for m in range(4)]
            lines = _multiappend(sock, reader, b"a", b"INBOX", [(b"", raw) for raw in raws])
            results.append(lines[-1])
        sock.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == sessions * 5 and all(r.startswith(b"a OK") for r in results)
    uids = sorted(Message.objects.values_list("uid", flat=True))
    assert uids == list(range(1, sessions * 5 * 4 + 1))
    (committer,) = [c for c in authenticated._COMMITTERS.values() if id(c) not in earlier]
    assert committer.messages == sessions * 5
    assert committer.batches < committer.messages, "no two APPENDs shared a commit"


def test_append_many_refuses_only_the_request_whose_folder_is_gone(mailbox):
    inbox = Folder.objects.get(mailbox=mailbox, role="inbox")
    gone = folders.create_folder(mailbox, "Gone")
    requests = [
        delivery.AppendRequest(mailbox.pk, folder.pk, [
            delivery.prepare_append(make_message(subject=f"{folder.name} {i}"), ["\\Seen"])
            for i in range(2)
        ])
        for folder in (inbox, gone)
    ]
    folders.delete_folder(mailbox, "Gone")
    stored, refused = delivery.append_many(requests)
    assert [row.uid for row in stored] == [1, 2] and all(row.seen for row in stored)
    assert isinstance(refused, Exception)
    assert Message.objects.count() == 2
