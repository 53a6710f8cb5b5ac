"""Concurrent deliveries and appends never share a UID (RFC 3501 §2.3.1.1), on whichever
database the run uses (SQLite locally, PostgreSQL in CI)."""

import threading

import pytest
from django.db import connection

from mailcore.models import Folder, Message
from mailcore.services import accounts, delivery, flags, folders
from tests.factories import make_message

THREADS = 8
PER_THREAD = 15


def run_in_threads(work, count=THREADS):
    errors = []
    barrier = threading.Barrier(count)

    def runner(index):
        try:
            barrier.wait()
            work(index)
        except Exception as exc:  # collected and re-raised in the test thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_get_distinct_contiguous_uids():
    accounts.create_domain("example.test")
    box = accounts.create_mailbox("busy@example.test", "pw")

    def work(index):
        for n in range(PER_THREAD):
            delivery.deliver_message(make_message(subject=f"t{index}-{n}"), ["busy@example.test"])

    run_in_threads(work)
    inbox = Folder.objects.get(mailbox=box, role="inbox")
    uids = sorted(Message.objects.filter(folder=inbox).values_list("uid", flat=True))
    total = THREADS * PER_THREAD
    assert uids == list(range(1, total + 1))
    assert (inbox.uidnext, inbox.message_count, inbox.unseen_count) == (total + 1, total, total)


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_copies_and_flag_changes_keep_counts_exact():
    accounts.create_domain("example.test")
    box = accounts.create_mailbox("mixed@example.test", "pw")
    inbox = Folder.objects.get(mailbox=box, role="inbox")
    archive = Folder.objects.get(mailbox=box, role="archive")
    for n in range(20):
        delivery.deliver_message(make_message(subject=f"seed {n}"), ["mixed@example.test"])

    def work(index):
        for n in range(5):
            if index % 3 == 0:
                delivery.append_message(archive, make_message(subject=f"a{index}-{n}"))
            elif index % 3 == 1:
                folders.copy_messages(inbox, [1 + (index + n) % 20], archive)
            else:
                flags.set_flags(inbox, [1 + (index * 5 + n) % 20], ["\\Seen"], "add")

    run_in_threads(work, count=6)
    archive.refresh_from_db()
    inbox.refresh_from_db()
    uids = sorted(Message.objects.filter(folder=archive).values_list("uid", flat=True))
    assert uids == list(range(1, len(uids) + 1)) and len(uids) == 20
    assert archive.message_count == 20 and archive.uidnext == 21
    assert inbox.unseen_count == Message.objects.filter(folder=inbox, seen=False).count()
    assert archive.unseen_count == Message.objects.filter(folder=archive, seen=False).count()
