"""Untagged updates that keep concurrent sessions consistent (RFC 3501 §7.4.1) and IDLE (RFC
2177): new mail, flags and expunges made by another IMAP session or by the service layer (as
SMTP delivery and the webmail call it) reach every session that has the folder selected."""

import time

import imapclient
import pytest

from mailcore.models import Message
from mailcore.services import delivery, flags, folders
from mailcore.services.common import UidRanges
from tests.conftest import PASSWORD
from tests.factories import make_message
from tests.imap.conftest import ADDRESS

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def session(imap, mailbox):
    clients = []

    def _open():
        client = imapclient.IMAPClient("127.0.0.1", port=imap.ports[0], ssl=False, timeout=20)
        client.login(ADDRESS, PASSWORD)
        client.select_folder("INBOX")
        clients.append(client)
        return client

    yield _open
    for client in clients:
        try:
            client.logout()
        except Exception:
            pass


def fill(mailbox, count):
    for i in range(count):
        delivery.deliver_to_mailboxes(make_message(subject=f"m{i}"), [mailbox.pk])


def test_flags_changed_in_another_session_show_up_on_noop(session, mailbox):
    fill(mailbox, 2)
    first, second = session(), session()
    second.add_flags([2], [b"\\Flagged"])
    time.sleep(0.1)
    responses = first.noop()[1]
    assert (2, b"FETCH", (b"UID", 2, b"FLAGS", (b"\\Flagged", b"\\Recent"))) in responses


def test_expunge_elsewhere_waits_while_fetch_would_make_numbers_ambiguous(session, mailbox):
    fill(mailbox, 3)
    first, second = session(), session()
    second.add_flags([1], [b"\\Deleted"])
    second.expunge()
    time.sleep(0.1)
    # A sequence-number FETCH must not see EXPUNGE: message 3 is still number 3 for it.
    first.use_uid = False
    fetched = first.fetch([3], ["UID"])
    assert fetched[3][b"UID"] == 3
    responses = first.noop()[1]
    assert (1, b"EXPUNGE") in responses
    fetched = first.fetch([2], ["UID"])
    assert fetched[2][b"UID"] == 3


def test_new_mail_shows_up_as_exists_and_recent_after_a_command(session, mailbox):
    fill(mailbox, 1)
    first = session()
    fill(mailbox, 2)
    time.sleep(0.1)
    responses = first.noop()[1]
    assert (3, b"EXISTS") in responses and (3, b"RECENT") in responses
    assert sorted(first.search()) == [1, 2, 3]


def test_idle_wakes_up_within_a_second_of_delivery(session, mailbox):
    client = session()
    client.idle()
    time.sleep(0.2)
    started = time.monotonic()
    delivery.deliver_message(make_message(subject="Live"), ["demo@example.test"])
    responses = client.idle_check(timeout=5)
    elapsed = time.monotonic() - started
    client.idle_done()
    assert (1, b"EXISTS") in responses
    assert elapsed < 1.0


def test_idle_reports_flags_and_expunges_made_by_the_webmail(session, mailbox, inbox):
    fill(mailbox, 2)
    client = session()
    client.idle()
    time.sleep(0.2)
    flags.set_flags(inbox, UidRanges(((1, 1),)), ["\\Seen"], "add")
    responses = client.idle_check(timeout=5)
    assert any(r[1] == b"FETCH" and b"\\Seen" in r[2][3] for r in responses)
    folders.expunge(inbox, UidRanges(((2, 2),)), only_deleted=False)
    responses = client.idle_check(timeout=5)
    client.idle_done()
    assert (2, b"EXPUNGE") in responses


def test_move_in_one_session_is_an_expunge_in_another(session, mailbox):
    fill(mailbox, 2)
    first, second = session(), session()
    second.move([1], "Archive")
    time.sleep(0.1)
    assert (1, b"EXPUNGE") in first.noop()[1]
    assert Message.objects.filter(folder__name="Archive").count() == 1


def test_own_store_is_not_echoed_again_on_noop(session, mailbox):
    fill(mailbox, 1)
    client = session()
    client.add_flags([1], [b"$Done"])
    time.sleep(0.1)
    assert not any(r[1:2] == (b"FETCH",) for r in client.noop()[1])


def test_deleting_the_selected_folder_elsewhere_ends_the_session(session, mailbox):
    folders.create_folder(mailbox, "Temp")
    first = session()
    first.select_folder("Temp")
    folders.delete_folder(mailbox, "Temp")
    time.sleep(0.1)
    responses = first.noop()[1]
    assert responses[0][0] == b"BYE"
    with pytest.raises(Exception):  # noqa: B017 - the server closed the connection
        first.noop()
