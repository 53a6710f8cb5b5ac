"""LIST-EXTENDED (RFC 5258), SPECIAL-USE selection (RFC 6154), LIST-STATUS (RFC 5819) and
CREATE-SPECIAL-USE (RFC 6154 §3) over a real listener with imaplib, curl and raw sockets;
malformed and oversized option and pattern lists get BAD or NO, never a crash."""

import subprocess
import time

import pytest

from mailcore.models import Folder, FolderRole, Message
from mailcore.services import delivery, folders, imap_read, quota
from tests.conftest import PASSWORD
from tests.factories import make_message
from tests.imap.conftest import ADDRESS
from tests.imap.test_commands import exchange, raw_session

pytestmark = pytest.mark.django_db(transaction=True)


def listing(client, *args: str) -> list[str]:
    """The untagged LIST and STATUS responses of one LIST, in order, as text."""
    sock, reader = client
    lines = exchange(sock, reader, b"t1 LIST " + " ".join(args).encode())
    assert lines[-1].startswith(b"t1 OK"), lines
    return [line.decode().rstrip("\r\n") for line in lines[:-1]]


def bad(client, line: bytes) -> bytes:
    sock, reader = client
    return exchange(sock, reader, b"t1 " + line)[-1]


@pytest.fixture
def raw(imap, mailbox):
    sock, reader = raw_session(imap.ports[0])
    exchange(sock, reader, f'l LOGIN {ADDRESS} "{PASSWORD}"'.encode(), b"l")
    yield sock, reader
    sock.close()


@pytest.fixture
def tree(mailbox):
    """Work, Work/2024 (subscribed), Work/2025, Old (subscribed, then deleted), Lists/a/deep
    (subscribed), and mail in INBOX and Work."""
    for name in ("Work/2024", "Work/2025", "Old", "Lists/a/deep"):
        folders.create_folder(mailbox, name, subscribe=False)
    for name in ("Work/2024", "Old", "Lists/a/deep"):
        folders.subscribe_folder(mailbox, name)
    folders.delete_folder(mailbox, "Old")
    for i in range(3):
        delivery.deliver_to_mailboxes(make_message(subject=f"in {i}", body="x" * 100 + "\n"),
                                      [mailbox.pk])
    return mailbox


def test_several_patterns_in_one_list(raw, tree):
    lines = listing(raw, '""', '("INBOX" "Sent*" "Work/%")')
    # Extended syntax: only what was asked for; the special use is always shown.
    assert lines == [
        '* LIST () "/" "INBOX"',
        '* LIST (\\Sent) "/" "Sent"',
        '* LIST () "/" "Work/2024"',
        '* LIST () "/" "Work/2025"',
    ]
    # The same folder named by two patterns is listed once (RFC 5258 §3.3).
    assert listing(raw, '""', '("Work" "W%" "%ork")') == ['* LIST () "/" "Work"']
    # The base syntax keeps the CHILDREN attributes (RFC 3348).
    assert listing(raw, '""', '"Work"') == ['* LIST (\\HasChildren) "/" "Work"']


def test_subscribed_selection_shows_nonexistent_and_return_options(raw, tree):
    # Subscribed names, existing or not (RFC 5258 §3.1); a deleted folder is \NonExistent.
    assert listing(raw, "(SUBSCRIBED)", '""', '"*"') == [
        '* LIST (\\Archive \\Subscribed) "/" "Archive"',
        '* LIST (\\Drafts \\Subscribed) "/" "Drafts"',
        '* LIST (\\Subscribed) "/" "INBOX"',
        '* LIST (\\Junk \\Subscribed) "/" "Junk"',
        '* LIST (\\Subscribed) "/" "Lists/a/deep"',
        '* LIST (\\NonExistent \\Subscribed) "/" "Old"',
        '* LIST (\\Sent \\Subscribed) "/" "Sent"',
        '* LIST (\\Trash \\Subscribed) "/" "Trash"',
        '* LIST (\\Subscribed) "/" "Work/2024"',
    ]
    lines = listing(raw, '""', '"Work*"', "RETURN", "(CHILDREN SUBSCRIBED)")
    assert lines == [
        '* LIST (\\HasChildren) "/" "Work"',
        '* LIST (\\HasNoChildren \\Subscribed) "/" "Work/2024"',
        '* LIST (\\HasNoChildren) "/" "Work/2025"',
    ]
    # REMOTE changes nothing here: there are no remote mailboxes.
    assert listing(raw, "(REMOTE)", '""', '"Work"') == ['* LIST () "/" "Work"']


def test_recursivematch_returns_childinfo(raw, tree):
    # Work is not subscribed but Work/2024 is: listed for it with CHILDINFO (RFC 5258 §3.5).
    assert listing(raw, "(SUBSCRIBED RECURSIVEMATCH)", '""', '"%"', "RETURN", "(CHILDREN)") == [
        '* LIST (\\HasNoChildren \\Archive \\Subscribed) "/" "Archive"',
        '* LIST (\\HasNoChildren \\Drafts \\Subscribed) "/" "Drafts"',
        '* LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"',
        '* LIST (\\HasNoChildren \\Junk \\Subscribed) "/" "Junk"',
        '* LIST (\\HasChildren) "/" "Lists" ("CHILDINFO" ("SUBSCRIBED"))',
        '* LIST (\\NonExistent \\HasNoChildren \\Subscribed) "/" "Old"',
        '* LIST (\\HasNoChildren \\Sent \\Subscribed) "/" "Sent"',
        '* LIST (\\HasNoChildren \\Trash \\Subscribed) "/" "Trash"',
        '* LIST (\\HasChildren) "/" "Work" ("CHILDINFO" ("SUBSCRIBED"))',
    ]


def test_special_use_selection_and_return(raw, tree):
    lines = listing(raw, "(SPECIAL-USE)", '""', '"*"', "RETURN", "(SPECIAL-USE)")
    assert lines == [
        '* LIST (\\Archive) "/" "Archive"',
        '* LIST (\\Drafts) "/" "Drafts"',
        '* LIST (\\Junk) "/" "Junk"',
        '* LIST (\\Sent) "/" "Sent"',
        '* LIST (\\Trash) "/" "Trash"',
    ]


def test_list_status_follows_each_selectable_folder(raw, tree, mailbox):
    exchange(*raw, b"s SELECT INBOX", b"s")
    exchange(*raw, b"s STORE 2 +FLAGS.SILENT (\\Seen \\Deleted)", b"s")
    exchange(*raw, b"s UNSELECT", b"s")
    lines = listing(raw, "(SUBSCRIBED RECURSIVEMATCH)", '""', '("INBOX" "Old" "W%")', "RETURN",
                    "(STATUS (MESSAGES UNSEEN UIDNEXT SIZE DELETED))")
    size = sum(Message.objects.filter(folder__name="INBOX").values_list("size", flat=True))
    assert lines == [
        '* LIST (\\Subscribed) "/" "INBOX"',
        f'* STATUS "INBOX" (MESSAGES 3 UNSEEN 2 UIDNEXT 4 SIZE {size} DELETED 1)',
        # No STATUS for a \NonExistent name nor a folder listed only for CHILDINFO (RFC 5819).
        '* LIST (\\NonExistent \\Subscribed) "/" "Old"',
        '* LIST () "/" "Work" ("CHILDINFO" ("SUBSCRIBED"))',
    ]
    # Every STATUS item, the same figures as STATUS gives.
    items = "(MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE DELETED DELETED-STORAGE)"
    lines = listing(raw, '""', '"*"', "RETURN", f"(STATUS {items})")
    statuses = [line for line in lines if line.startswith("* STATUS")]
    assert len(statuses) == Folder.objects.filter(mailbox=mailbox).count()
    for line in statuses:
        name = line.split('"')[1]
        single = exchange(*raw, f"t2 STATUS \"{name}\" {items}".encode(), b"t2")
        assert single[0].decode().rstrip("\r\n") == line
    # HIGHESTMODSEQ enables CONDSTORE as STATUS does (RFC 7162 §3.1.6); nothing else changed.
    assert exchange(*raw, b"t3 NOOP", b"t3")[-1].startswith(b"t3 OK")


def test_list_status_with_curl(imap, tree):
    # curl prints the untagged responses named like the command sent: the LIST lines; the
    # STATUS lines between them are checked with raw sockets above.
    url = f"imap://127.0.0.1:{imap.ports[0]}/"
    done = subprocess.run(
        ["curl", "-s", "--max-time", "20", url, "--user", f"{ADDRESS}:{PASSWORD}",
         "-X", 'LIST "" ("INBOX" "Work/%") RETURN (STATUS (MESSAGES UNSEEN))'],
        capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        '* LIST () "/" "INBOX"',
        '* LIST () "/" "Work/2024"',
        '* LIST () "/" "Work/2025"',
    ]


def test_list_status_reads_all_folders_in_a_constant_number_of_queries(
        mailbox, django_assert_max_num_queries):
    for i in range(60):
        folders.create_folder(mailbox, f"F{i:02d}")
    for i in range(4):
        delivery.deliver_to_mailboxes(make_message(subject=f"q{i}"), [mailbox.pk])
    with django_assert_max_num_queries(1):
        rows = imap_read.list_folders_status(mailbox)
    assert len(rows) == 66
    ids = [row.id for row in rows]
    with django_assert_max_num_queries(1):
        usage = quota.folders_usage(ids)
    inbox = next(row for row in rows if row.name == "INBOX")
    assert usage[inbox.id][0] == sum(Message.objects.values_list("size", flat=True))
    with django_assert_max_num_queries(1):
        counts = imap_read.count_above({row.id: 2 for row in rows[:150]})
    assert counts == {inbox.id: 2}
    assert quota.folder_usage(inbox.id) == usage[inbox.id]


def test_create_with_a_special_use(raw, mailbox):
    # Every mailbox has one folder of each use: a second \Archive is NO [USE] (RFC 6154 §3)
    # and nothing is created.
    assert bad(raw, b'CREATE "Keep" (USE (\\Archive))').startswith(b"t1 NO [USE]")
    assert not Folder.objects.filter(name="Keep").exists()
    for refused in (b"(USE (\\All))", b"(USE (\\Flagged))", b"(USE (\\Sent \\Drafts))",
                    b"(USE (\\Inbox))", b"(USE (Archive))"):
        assert bad(raw, b'CREATE "Keep" ' + refused).startswith(b"t1 NO [USE]"), refused
    assert not Folder.objects.filter(name="Keep").exists()
    # A mailbox without an archive (made before the role existed) takes one.
    Folder.objects.filter(mailbox=mailbox, role=FolderRole.ARCHIVE).update(role="")
    assert bad(raw, b'CREATE "Keep/Old" (USE (\\archive \\Archive))').startswith(b"t1 OK")
    assert Folder.objects.get(mailbox=mailbox, name="Keep/Old").role == FolderRole.ARCHIVE
    assert listing(raw, "(SPECIAL-USE)", '""', '"Keep*"') == [
        '* LIST (\\Archive) "/" "Keep/Old"']
    assert bad(raw, b'CREATE "Plain" (USE ())').startswith(b"t1 OK")
    assert Folder.objects.get(mailbox=mailbox, name="Plain").role == ""


@pytest.mark.parametrize("line", [
    b'CREATE "X" (USE \\Archive)',
    b'CREATE "X" (FOO (BAR))',
    b'CREATE "X" (USE (\\Archive)',
    b'CREATE "X" ()',
    b'LIST (FOO) "" "*"',
    b'LIST (RECURSIVEMATCH) "" "*"',
    b'LIST (RECURSIVEMATCH REMOTE) "" "*"',
    b'LIST (RECURSIVEMATCH SPECIAL-USE) "" "*"',
    b'LIST (SUBSCRIBED "" "*"',
    b'LIST (SUBSCRIBED) "" ()',
    b'LIST "" ("a" "b"',
    b'LIST "" "*" RETURN (FOO)',
    b'LIST "" "*" RETURN (STATUS)',
    b'LIST "" "*" RETURN (STATUS ())',
    b'LIST "" "*" RETURN (STATUS (BOGUS))',
    b'LIST "" "*" RETURN (STATUS (MESSAGES) STATUS (UNSEEN))',
    b'LIST "" "*" RETURN STATUS (MESSAGES)',
    b'LIST "" "*" RETURN (CHILDREN',
    b'LIST "" "*" (CHILDREN)',
    b'LSUB (SUBSCRIBED) "" "*"',
    b'LSUB "" ("*")',
    b'LIST "" ' + b"(" * 40 + b'"a"' + b")" * 40,
])
def test_malformed_list_and_create_arguments_get_bad(raw, line):
    assert bad(raw, line).startswith(b"t1 BAD"), line
    assert exchange(*raw, b"t2 NOOP", b"t2")[-1].startswith(b"t2 OK")


def test_huge_pattern_lists_are_refused_quickly(raw, mailbox):
    for i in range(30):
        folders.create_folder(mailbox, f"Deep/{i}")
    sock, reader = raw
    # At the cap: answered; one more, or a line-long list, is BAD before any matching.
    patterns = " ".join(['"*a*b*c*%"'] * 100)
    assert bad(raw, f'LIST "" ({patterns})'.encode()).startswith(b"t1 OK")
    assert bad(raw, f'LIST "" ({patterns} "x")'.encode()).startswith(b"t1 BAD")
    started = time.monotonic()
    line = b'LIST "" (' + b" ".join([b"%*%*%*%"] * 7000) + b")"
    assert len(line) < 64 * 1024
    assert bad(raw, line).startswith(b"t1 BAD")
    assert time.monotonic() - started < 5
    # Long patterns within the list are NO [LIMIT], as for a single one.
    assert bad(raw, b'LIST "" ("a" "' + b"*" * 2000 + b'")').startswith(b"t1 NO [LIMIT]")
    assert exchange(sock, reader, b"t2 NOOP", b"t2")[-1].startswith(b"t2 OK")


def test_empty_patterns_still_ask_for_the_delimiter(raw, mailbox):
    assert listing(raw, '""', '""') == ['* LIST (\\Noselect) "/" ""']
    assert listing(raw, "()", '""', '("")', "RETURN", "()") == ['* LIST (\\Noselect) "/" ""']
