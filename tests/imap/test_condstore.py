"""CONDSTORE and QRESYNC (RFC 7162) against the real listener with imapclient and imaplib:
mod-sequences in SELECT, STATUS, FETCH and SEARCH, FETCH CHANGEDSINCE, STORE UNCHANGEDSINCE,
ENABLE, QRESYNC resynchronisation on SELECT, VANISHED, and the parser's modifiers."""

import re
import time

import imapclient
import pytest

from mailcore.models import Folder, Message
from mailcore.protocols.imap.parser import ParseError, parse_command
from mailcore.services import delivery, flags, folders
from mailcore.services.common import UidRanges
from mailcore.services.imap_keys import ModSeq
from tests.conftest import PASSWORD
from tests.factories import make_message
from tests.imap.conftest import ADDRESS

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(imap, mailbox):
    clients = []

    def _open():
        c = imapclient.IMAPClient("127.0.0.1", port=imap.ports[0], ssl=False, timeout=20)
        c.login(ADDRESS, PASSWORD)
        clients.append(c)
        return c

    yield _open
    for c in clients:
        try:
            c.logout()
        except Exception:
            pass


def fill(mailbox, count):
    for i in range(count):
        delivery.deliver_to_mailboxes(make_message(subject=f"m{i}"), [mailbox.pk])


def highest(folder_name="INBOX") -> int:
    return Folder.objects.get(mailbox__address=ADDRESS, name=folder_name).highestmodseq


def modseq_of(uid: int) -> int:
    return Message.objects.get(folder__name="INBOX", uid=uid).modseq


def raw(c, command: str) -> list[bytes]:
    """Send a command through imapclient's imaplib and return every response line."""
    imap = c._imap
    tag = imap._new_tag().decode()
    imap.send(f"{tag} {command}\r\n".encode())
    lines = []
    while True:
        line = imap.readline()
        lines.append(line.rstrip(b"\r\n"))
        if line.startswith(tag.encode() + b" "):
            return lines


def test_capabilities_announce_condstore_and_qresync(client):
    caps = client().capabilities()
    assert b"CONDSTORE" in caps and b"QRESYNC" in caps


def test_select_with_condstore_reports_highestmodseq(client, mailbox):
    fill(mailbox, 3)
    c = client()
    lines = raw(c, "SELECT INBOX (CONDSTORE)")
    assert f"* OK [HIGHESTMODSEQ {highest()}] Highest".encode() in lines
    assert lines[-1].split(b" ", 2)[1] == b"OK"


def test_imapclient_sees_highestmodseq_after_enable(client, mailbox):
    fill(mailbox, 2)
    c = client()
    assert c.enable("CONDSTORE") == [b"CONDSTORE"]
    info = c.select_folder("INBOX")
    assert info[b"HIGHESTMODSEQ"] == highest()


def test_status_reports_highestmodseq(client, mailbox):
    fill(mailbox, 2)
    status = client().folder_status("INBOX", ["HIGHESTMODSEQ", "MESSAGES"])
    assert status[b"HIGHESTMODSEQ"] == highest()
    assert status[b"MESSAGES"] == 2


def test_fetch_modseq_and_changedsince_return_only_what_changed(client, mailbox, inbox):
    fill(mailbox, 4)
    c = client()
    c.select_folder("INBOX")
    mark = highest()
    flags.set_flags(inbox, [2, 4], ["\\Flagged"], "add")
    data = c.fetch([1, 2, 3, 4], ["FLAGS"], modifiers=[f"CHANGEDSINCE {mark}"])
    assert sorted(data) == [2, 4]
    for uid in (2, 4):
        assert data[uid][b"MODSEQ"] == (modseq_of(uid),)
        assert b"\\Flagged" in data[uid][b"FLAGS"]
    everything = c.fetch([1, 2, 3, 4], ["MODSEQ"])
    assert {uid: d[b"MODSEQ"][0] for uid, d in everything.items()} == {
        uid: modseq_of(uid) for uid in range(1, 5)
    }


def test_store_unchangedsince_refuses_messages_changed_since(client, mailbox, inbox):
    fill(mailbox, 3)
    c = client()
    c.select_folder("INBOX")
    mark = highest()
    flags.set_flags(inbox, [2], ["\\Answered"], "add")  # changed by someone else after mark
    lines = raw(c, f"UID STORE 1:3 (UNCHANGEDSINCE {mark}) +FLAGS (\\Flagged)")
    assert lines[-1].endswith(b"OK [MODIFIED 2] Conditional STORE failed")
    stored = [line for line in lines if b"\\Flagged" in line]
    assert len(stored) == 2 and all(b"MODSEQ (" in line for line in stored)
    # The other session's change to message 2 is reported as such, without \Flagged.
    assert [line for line in lines if b"UID 2 " in line and b"\\Answered" in line]
    assert not Message.objects.get(folder=inbox, uid=2).flagged
    assert Message.objects.get(folder=inbox, uid=1).flagged


def test_store_silent_with_condstore_still_reports_the_new_modseq(client, mailbox, inbox):
    fill(mailbox, 2)
    c = client()
    c.enable("CONDSTORE")
    c.select_folder("INBOX")
    lines = raw(c, "STORE 1 +FLAGS.SILENT (\\Seen)")
    assert f"* 1 FETCH (UID 1 MODSEQ ({modseq_of(1)}))".encode() in lines
    lines = raw(c, "STORE 1 +FLAGS.SILENT (\\Seen)")  # nothing changes: nothing to report
    assert [line for line in lines if b"FETCH" in line] == []


def test_search_modseq_finds_changed_messages_and_reports_their_highest(client, mailbox, inbox):
    fill(mailbox, 5)
    c = client()
    c.select_folder("INBOX")
    mark = highest()
    flags.set_flags(inbox, [3], ["\\Seen"], "add")
    flags.set_flags(inbox, [5], ["work"], "add")
    found = c.search(["MODSEQ", mark + 1])
    assert sorted(found) == [3, 5]
    assert found.modseq == modseq_of(5)
    lines = raw(c, f'SEARCH MODSEQ "/flags/\\\\draft" all {mark + 1}')
    assert f"* SEARCH 3 5 (MODSEQ {modseq_of(5)})".encode() in lines
    assert raw(c, "SEARCH MODSEQ 999999999")[0] == b"* SEARCH"


def test_flag_changes_by_others_carry_modseq_once_condstore_is_on(client, mailbox, inbox):
    fill(mailbox, 2)
    c = client()
    c.enable("CONDSTORE")
    c.select_folder("INBOX")
    flags.set_flags(inbox, [2], ["\\Flagged"], "add")
    time.sleep(0.1)
    lines = raw(c, "NOOP")
    assert any(re.fullmatch(rb"\* 2 FETCH \(UID 2 FLAGS \(.*\\Flagged.*\) MODSEQ \(\d+\)\)", line)
               for line in lines), lines


def test_enable_lists_only_what_it_newly_enables(client):
    c = client()
    assert raw(c, "ENABLE QRESYNC CONDSTORE X-UNKNOWN")[0] == b"* ENABLED QRESYNC"
    assert raw(c, "ENABLE CONDSTORE")[0] == b"* ENABLED"


def test_qresync_select_reports_vanished_and_changed_flags(client, mailbox, inbox):
    fill(mailbox, 6)
    c = client()
    info = c.select_folder("INBOX")
    uidvalidity = info[b"UIDVALIDITY"]
    mark = highest()
    c.logout()
    # While the client is away: 2 and 5 go, 4 gets a flag, a new message arrives.
    flags.set_flags(inbox, [2, 5], ["\\Deleted"], "add")
    folders.expunge(inbox)
    flags.set_flags(inbox, [4], ["\\Answered"], "add")
    fill(mailbox, 1)
    c = client()
    raw(c, "ENABLE QRESYNC")
    lines = raw(c, f"SELECT INBOX (QRESYNC ({uidvalidity} {mark} 1:6))")
    assert b"* VANISHED (EARLIER) 2,5" in lines
    fetches = [line for line in lines if b" FETCH " in line]
    assert len(fetches) == 1
    assert re.fullmatch(rb"\* 3 FETCH \(UID 4 FLAGS \(\\Answered\) MODSEQ \(\d+\)\)", fetches[0])
    assert f"* OK [HIGHESTMODSEQ {highest()}] Highest".encode() in lines
    assert b"* 5 EXISTS" in lines


def test_qresync_select_without_enable_is_refused(client, mailbox):
    fill(mailbox, 1)
    lines = raw(client(), "SELECT INBOX (QRESYNC (1 1))")
    assert b" BAD " in lines[-1]


def test_qresync_select_with_another_uidvalidity_resyncs_nothing(client, mailbox, inbox):
    fill(mailbox, 2)
    flags.set_flags(inbox, [1], ["\\Deleted"], "add")
    folders.expunge(inbox)
    c = client()
    raw(c, "ENABLE QRESYNC")
    lines = raw(c, "SELECT INBOX (QRESYNC (1 1))")
    assert not [line for line in lines if b"VANISHED" in line or b"FETCH" in line]


def test_qresync_turns_expunge_into_vanished_with_highestmodseq(client, mailbox):
    fill(mailbox, 4)
    c = client()
    raw(c, "ENABLE QRESYNC")
    raw(c, "SELECT INBOX")
    raw(c, "STORE 2,3 +FLAGS.SILENT (\\Deleted)")
    lines = raw(c, "EXPUNGE")
    assert lines[0] == b"* VANISHED 2:3"
    assert not [line for line in lines if line.endswith(b"EXPUNGE")]
    assert f"OK [HIGHESTMODSEQ {highest()}] EXPUNGE completed".encode() in lines[-1]


def test_qresync_reports_moved_messages_as_vanished(client, mailbox):
    fill(mailbox, 3)
    c = client()
    raw(c, "ENABLE QRESYNC")
    raw(c, "SELECT INBOX")
    lines = raw(c, "MOVE 1:2 Archive")
    assert lines[0].startswith(b"* OK [COPYUID ")
    assert b"* VANISHED 1:2" in lines
    assert not [line for line in lines if line.endswith(b"EXPUNGE")]
    assert raw(c, "FETCH 1 (UID)")[0] == b"* 1 FETCH (UID 3)"


def test_uid_fetch_vanished_modifier_lists_uids_expunged_since(client, mailbox, inbox):
    fill(mailbox, 5)
    c = client()
    raw(c, "ENABLE QRESYNC")
    raw(c, "SELECT INBOX")
    mark = highest()
    flags.set_flags(inbox, [1, 4], ["\\Deleted"], "add")
    folders.expunge(inbox, UidRanges(((4, 4),)))
    lines = raw(c, f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {mark} VANISHED)")
    assert b"* VANISHED (EARLIER) 4" in lines
    fetched = [line for line in lines if b" FETCH (" in line]
    assert any(b"UID 1 " in line and b"\\Deleted" in line and b"MODSEQ" in line
               for line in fetched), lines


def test_the_vanished_fetch_modifier_needs_qresync(client, mailbox):
    fill(mailbox, 1)
    c = client()
    raw(c, "SELECT INBOX")
    assert b" BAD " in raw(c, "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")[-1]


@pytest.mark.parametrize(
    ("text", "check"),
    [
        (b"a FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)", lambda c: c.changedsince == 12345),
        (b"a UID FETCH 1:* FLAGS (CHANGEDSINCE 7 VANISHED)", lambda c: c.vanished),
        (b"a STORE 1 (UNCHANGEDSINCE 0) +FLAGS (\\Seen)",
         lambda c: c.unchangedsince == 0 and c.mode == "add"),
        (b"a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211 (1:10 41:50)))",
         lambda c: (c.qresync.uidvalidity, c.qresync.modseq) == (67890007, 20050715194045000)
         and c.qresync.match is not None),
        (b"a SEARCH MODSEQ 9223372036854775807", lambda c: c.key == ModSeq(2**63 - 1)),
    ],
)
def test_the_parser_reads_rfc7162_modifiers(text, check):
    assert check(parse_command(text))


@pytest.mark.parametrize(
    "text",
    [
        b"a FETCH 1 FLAGS (CHANGEDSINCE)",
        b"a FETCH 1 FLAGS (VANISHED)",
        b"a UID FETCH 1 FLAGS (VANISHED)",
        b"a STORE 1 (UNCHANGEDSINCE 9223372036854775808) +FLAGS (\\Seen)",
        b"a STORE 1 (FOO 1) +FLAGS (\\Seen)",
        b"a SELECT INBOX (QRESYNC (0 1))",
    ],
)
def test_the_parser_refuses_malformed_rfc7162_modifiers(text):
    with pytest.raises(ParseError):
        parse_command(text)
