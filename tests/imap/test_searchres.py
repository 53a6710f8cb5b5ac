"""SEARCHRES (RFC 5182): ``SEARCH RETURN (SAVE)`` and the ``$`` it saves, used by FETCH, STORE,
COPY, MOVE, UID EXPUNGE and SEARCH, over a real listener with imaplib, imapclient and raw
sockets; hostile uses of ``$`` get BAD, never a crash."""

import imaplib
import re

import imapclient
import pytest

from mailcore.models import Folder, Message
from mailcore.services import delivery
from tests.conftest import PASSWORD
from tests.factories import make_message
from tests.imap.conftest import ADDRESS
from tests.imap.test_commands import exchange, raw_session

pytestmark = pytest.mark.django_db(transaction=True)


def fill(mailbox, count: int = 5) -> None:
    for i in range(1, count + 1):
        delivery.deliver_to_mailboxes(make_message(subject=f"m{i}", body=f"body {i}\n"),
                                      [mailbox.pk])


def command(client, name: str, *args: str):
    """Run a command through imaplib: (status, its ESEARCH responses as text, tagged data)."""
    client.untagged_responses.pop("ESEARCH", None)
    typ, data = client._simple_command(name, *args)
    lines = client.untagged_responses.pop("ESEARCH", [])
    return typ, [line.decode() for line in lines if line], data


def fetched_uids(client, seqset: str, uid: bool = False) -> list[int]:
    if uid:
        typ, data = client.uid("FETCH", seqset, "(UID)")
    else:
        typ, data = client.fetch(seqset, "(UID)")
    assert typ == "OK", data
    return [int(re.search(rb"UID (\d+)", item)[1]) for item in data if item]


def test_capability_announces_the_new_extensions(connect):
    caps = connect(login=False).capabilities
    for cap in ("SEARCHRES", "ESEARCH", "LIST-EXTENDED", "LIST-STATUS", "CREATE-SPECIAL-USE"):
        assert cap in caps


def test_search_save_sends_no_esearch_and_fetch_uses_the_saved_messages(connect, mailbox):
    fill(mailbox)
    Message.objects.filter(uid__in=[2, 4]).update(flagged=True)
    client = connect()
    client.select("INBOX")
    client.untagged_responses.clear()
    typ, data = client._simple_command("SEARCH", "RETURN", "(SAVE)", "FLAGGED")
    assert typ == "OK"
    # RFC 5182 §2.1: SAVE alone asks for no ESEARCH (nor SEARCH) response.
    assert "ESEARCH" not in client.untagged_responses
    assert "SEARCH" not in client.untagged_responses
    assert fetched_uids(client, "$") == [2, 4]
    assert fetched_uids(client, "$", uid=True) == [2, 4]
    # "$" is a search key too, alone or combined.
    assert client.search(None, "$")[1] == [b"2 4"]
    assert client.uid("SEARCH", "UID", "$", "NOT", "UID", "4")[1] == [b"2"]
    assert client.search(None, "OR", "$", "1")[1] == [b"1 2 4"]


def test_dollar_before_any_save_is_the_empty_set(connect, mailbox):
    # RFC 5182 §2.1: "$" holding nothing is a valid set that matches no message.
    fill(mailbox, 3)
    client = connect()
    client.select("INBOX")
    typ, data = client.fetch("$", "(FLAGS)")
    assert typ == "OK" and data == [None]
    assert client.store("$", "+FLAGS", "(\\Seen)")[0] == "OK"
    assert client.copy("$", "Archive")[0] == "OK"
    assert client.search(None, "$")[1] == [b""]
    assert client.uid("EXPUNGE", "$")[0] == "OK"
    assert Message.objects.filter(seen=True).count() == 0
    assert Message.objects.filter(folder__name="Archive").count() == 0


def test_store_copy_and_move_act_on_the_saved_messages(connect, mailbox):
    fill(mailbox, 6)
    client = connect()
    client.select("INBOX")
    assert client._simple_command("UID", "SEARCH", "RETURN", "(SAVE)", "UID", "2:3,5")[0] == "OK"
    assert client.store("$", "+FLAGS", "(\\Flagged)")[0] == "OK"
    assert sorted(Message.objects.filter(flagged=True).values_list("uid", flat=True)) == [2, 3, 5]
    typ, data = client.copy("$", "Archive")
    assert typ == "OK" and b"COPYUID" in data[0]
    assert Message.objects.filter(folder__name="Archive").count() == 3
    typ, data = client.uid("MOVE", "$", "Trash")
    assert typ == "OK"
    inbox = Folder.objects.get(mailbox=mailbox, name="INBOX")
    assert sorted(Message.objects.filter(folder=inbox).values_list("uid", flat=True)) == [1, 4, 6]
    # Moved away means expunged here: "$" now names nothing in INBOX.
    assert fetched_uids(client, "$") == []


def test_expunge_removes_messages_from_the_saved_result(connect, mailbox):
    fill(mailbox, 5)
    client = connect()
    client.select("INBOX")
    client._simple_command("SEARCH", "RETURN", "(SAVE)", "2:4")
    client.store("3", "+FLAGS", "(\\Deleted)")
    client.expunge()
    # Message numbers follow the expunge (RFC 5182 §2.1, RFC 3501 §7.4.1): 2 and 3 now.
    assert fetched_uids(client, "$") == [2, 4]
    typ, data = client.fetch("$", "(UID)")
    assert [item.split()[0] for item in data] == [b"2", b"3"]
    # UID EXPUNGE $ takes the saved set too.
    client.store("$", "+FLAGS", "(\\Deleted)")
    assert client.uid("EXPUNGE", "$")[0] == "OK"
    assert sorted(Message.objects.values_list("uid", flat=True)) == [1, 5]


def test_select_examine_close_and_unselect_reset_the_saved_result(connect, mailbox):
    fill(mailbox, 3)
    client = connect()
    for reset in (lambda: client.select("INBOX"), lambda: client.select("INBOX", readonly=True),
                  lambda: (client.close(), client.select("INBOX")),
                  lambda: (client.unselect(), client.select("INBOX"))):
        client.select("INBOX")
        client._simple_command("SEARCH", "RETURN", "(SAVE)", "ALL")
        assert fetched_uids(client, "$") == [1, 2, 3]
        reset()
        assert fetched_uids(client, "$") == []


def test_save_with_min_max_keeps_only_those_and_with_count_keeps_all(connect, mailbox):
    fill(mailbox, 5)
    client = connect()
    client.select("INBOX")
    typ, lines, _ = command(client, "SEARCH", "RETURN", "(MIN MAX SAVE)", "2:4")
    assert typ == "OK" and lines[0].endswith("MIN 2 MAX 4")
    assert fetched_uids(client, "$") == [2, 4]  # RFC 5182 §2.1: just MIN and MAX
    command(client, "SEARCH", "RETURN", "(MIN SAVE)", "2:4")
    assert fetched_uids(client, "$") == [2]
    typ, lines, _ = command(client, "SEARCH", "RETURN", "(COUNT SAVE)", "2:4")
    assert lines[0].endswith("COUNT 3")
    assert fetched_uids(client, "$") == [2, 3, 4]  # with COUNT, the whole result


def test_a_search_with_save_uses_the_previous_result_before_replacing_it(connect, mailbox):
    fill(mailbox, 6)
    client = connect()
    client.select("INBOX")
    client._simple_command("SEARCH", "RETURN", "(SAVE)", "1:4")
    client._simple_command("SEARCH", "RETURN", "(SAVE)", "$", "NOT", "2")
    assert fetched_uids(client, "$") == [1, 3, 4]


def test_no_empties_the_saved_result_and_bad_leaves_it(connect, mailbox):
    fill(mailbox, 3)
    client = connect()
    client.select("INBOX")
    client._simple_command("SEARCH", "RETURN", "(SAVE)", "1:2")
    # RFC 5182 §2.1: a BAD SEARCH does not change "$" ...
    with pytest.raises(imaplib.IMAP4.error, match="BAD"):
        client._simple_command("SEARCH", "RETURN", "(SAVE)", "NOSUCHKEY")
    assert fetched_uids(client, "$") == [1, 2]
    # ... a SEARCH without SAVE neither ...
    client.search(None, "3")
    assert fetched_uids(client, "$") == [1, 2]
    # ... and a NO to a SEARCH with SAVE leaves it empty.
    typ, data = client._simple_command("SEARCH", "RETURN", "(SAVE)", "CHARSET", "KOI8-R", "ALL")
    assert typ == "NO" and b"BADCHARSET" in data[0]
    assert fetched_uids(client, "$") == []


def test_sort_with_save(connect, mailbox):
    for subject in ("b", "c", "a"):
        delivery.deliver_to_mailboxes(make_message(subject=subject), [mailbox.pk])
    client = connect()
    client.select("INBOX")
    typ, lines, _ = command(client, "SORT", "RETURN", "(MIN SAVE)", "(SUBJECT)", "UTF-8", "ALL")
    assert typ == "OK" and lines[0].endswith("MIN 3")
    assert fetched_uids(client, "$") == [3]  # the first in sort order


def test_imapclient_searches_copies_and_flags_the_saved_messages(imap, mailbox):
    # imapclient passes "$" through as a message set (its fetch and flag helpers then keep
    # only numeric ids, so silent stores and COPY are used).
    fill(mailbox, 4)
    Message.objects.filter(uid=3).update(seen=True)
    with imapclient.IMAPClient("127.0.0.1", port=imap.ports[0], ssl=False, timeout=20) as client:
        client.login(ADDRESS, PASSWORD)
        assert b"SEARCHRES" in client.capabilities()
        client.select_folder("INBOX")
        client._imap._simple_command("UID", "SEARCH", "RETURN", "(SAVE)", "SEEN")
        assert client.search(["$"]) == [3]
        assert client.search(["NOT", "$"]) == [1, 2, 4]
        client.add_flags("$", [b"$Saved"], silent=True)
        client.copy("$", "Archive")
    assert Message.objects.get(folder__name="INBOX", uid=3).keywords == ["$Saved"]
    assert Message.objects.filter(folder__name="Archive").count() == 1


@pytest.mark.parametrize("line", [
    b"t1 FETCH $,1 (FLAGS)",
    b"t1 FETCH 1:$ (FLAGS)",
    b"t1 FETCH $$ (FLAGS)",
    b"t1 FETCH $:* (FLAGS)",
    b"t1 SEARCH $,2",
    b"t1 SEARCH RETURN (SAVE",
    b"t1 SEARCH RETURN (SAVE BOGUS) ALL",
    b"t1 SEARCH RETURN SAVE ALL",
    b"t1 STORE $ +FLAGS",
    b"t1 UID COPY $",
])
def test_malformed_uses_of_dollar_get_bad(imap, mailbox, line):
    fill(mailbox, 2)
    sock, reader = raw_session(imap.ports[0])
    exchange(sock, reader, f'l LOGIN {ADDRESS} "{PASSWORD}"'.encode(), b"l")
    exchange(sock, reader, b"s SELECT INBOX", b"s")
    exchange(sock, reader, b"v SEARCH RETURN (SAVE) ALL", b"v")
    assert exchange(sock, reader, line)[-1].startswith(b"t1 BAD")
    # The session goes on, the saved result intact.
    lines = exchange(sock, reader, b"t2 FETCH $ (UID)", b"t2")
    assert lines[-1].startswith(b"t2 OK") and len(lines) == 3
    sock.close()


def test_dollar_in_qresync_select_and_outside_a_folder_is_refused(imap, mailbox):
    fill(mailbox, 1)
    sock, reader = raw_session(imap.ports[0])
    exchange(sock, reader, f'l LOGIN {ADDRESS} "{PASSWORD}"'.encode(), b"l")
    exchange(sock, reader, b"e ENABLE QRESYNC", b"e")
    assert exchange(sock, reader, b"t1 SELECT INBOX (QRESYNC (1 1 $))")[-1].startswith(b"t1 BAD")
    assert exchange(sock, reader, b"t2 FETCH $ FLAGS", b"t2")[-1].startswith(b"t2 BAD")
    assert exchange(sock, reader, b"t3 NOOP", b"t3")[-1].startswith(b"t3 OK")
    sock.close()


def test_a_large_saved_result_is_kept_as_ranges(connect, mailbox):
    fill(mailbox, 40)
    Message.objects.filter(uid__in=range(10, 20)).update(flagged=True)
    client = connect()
    client.select("INBOX")
    client._simple_command("SEARCH", "RETURN", "(SAVE)", "OR", "FLAGGED", "30:*")
    assert fetched_uids(client, "$") == list(range(10, 20)) + list(range(30, 41))
    typ, data = client._simple_command("UID", "SEARCH", "RETURN", "(ALL)", "$")
    assert client.untagged_responses.pop("ESEARCH")[0].endswith(b"ALL 10:19,30:40")
