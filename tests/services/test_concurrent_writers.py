"""Writers racing on the same messages, with real concurrent sessions (one database connection per
thread): two sessions expunging or moving the same messages, EXPUNGE against APPEND and delivery,
moves in opposite directions, the last copy of some bytes expunged while the same bytes arrive.

On PostgreSQL these ran into each other: candidates were read before the folder's row lock, so
the second of two EXPUNGEs counted the messages again and drove the folder's counters below zero
(issue 15), and writers took the folder and mailbox locks in opposite orders (deadlocks). SQLite
serialises writers, so there the same tests check that nothing is lost or counted twice."""

import threading
from functools import partial

import pytest
from django.db import connection
from django.db.models import Count, Sum

from mailcore.models import Blob, ExpungedMessage, Folder, Mailbox, Message
from mailcore.services import accounts, delivery, flags, folders
from tests.factories import make_message

ROUNDS = 6


def run_together(*works, timeout=120):
    """Run each callable in its own thread (its own database connection), all released at once;
    return their results in order, re-raising the first error."""
    results: list = [None] * len(works)
    errors: list = []
    barrier = threading.Barrier(len(works))

    def runner(index):
        try:
            barrier.wait()
            results[index] = works[index]()
        except Exception as exc:  # re-raised in the test thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(len(works))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), "a writer never finished"
    if errors:
        raise errors[0]
    return results


def assert_counts_exact(mailbox: Mailbox) -> None:
    """Every counter the store keeps equals what the rows say."""
    for folder in Folder.objects.filter(mailbox=mailbox):
        rows = Message.objects.filter(folder=folder)
        assert folder.message_count == rows.count(), folder.name
        assert folder.unseen_count == rows.filter(seen=False).count(), folder.name
        top = max(rows.values_list("uid", flat=True), default=0)
        assert folder.uidnext > top, folder.name
        twice = (ExpungedMessage.objects.filter(folder=folder).values("uid")
                 .annotate(n=Count("id")).filter(n__gt=1))
        assert not twice.exists(), f"{folder.name}: a UID expunged twice"
        assert not rows.filter(uid__in=ExpungedMessage.objects.filter(folder=folder)
                               .values("uid")).exists(), f"{folder.name}: a live UID expunged"
    used = Message.objects.filter(mailbox=mailbox).aggregate(total=Sum("size"))["total"] or 0
    mailbox.refresh_from_db()
    assert mailbox.used_bytes == used


def fill(folder: Folder, count: int, *, deleted: bool = True, tag: str = "m") -> list[int]:
    """Append ``count`` messages (every other one seen) and return their UIDs."""
    uids = []
    for n in range(count):
        marks = ["\\Deleted"] if deleted else []
        if n % 2:
            marks.append("\\Seen")
        uids.append(delivery.append_message(
            folder, make_message(subject=f"{tag} {n}"), flags=marks).uid)
    return uids


def fresh(folder: Folder) -> Folder:
    """The folder as a new session would load it (each session holds its own object)."""
    return Folder.objects.get(pk=folder.pk)


def expunge(folder: Folder, *args, **kwargs) -> list[int]:
    """EXPUNGE as a session does it, with its own copy of the folder."""
    return folders.expunge(fresh(folder), *args, **kwargs)


def move(source: Folder, uids, target: Folder) -> dict[int, int]:
    return folders.move_messages(fresh(source), uids, fresh(target))


def copy(source: Folder, uids, target: Folder) -> dict[int, int]:
    return folders.copy_messages(fresh(source), uids, fresh(target))


@pytest.fixture
def box(db):
    accounts.create_domain("example.test")
    return accounts.create_mailbox("race@example.test", "pw")


def folder_of(box, role):
    return Folder.objects.get(mailbox=box, role=role)


@pytest.mark.django_db(transaction=True)
def test_two_sessions_expunging_the_same_messages_remove_each_once(box):
    inbox = folder_of(box, "inbox")
    for round_ in range(ROUNDS):
        uids = fill(inbox, 12, tag=f"r{round_}")
        first, second = run_together(partial(expunge, inbox), partial(expunge, inbox))
        assert sorted(first + second) == uids
        assert_counts_exact(box)
    assert fresh(inbox).message_count == 0


@pytest.mark.django_db(transaction=True)
def test_uid_expunge_and_webmail_delete_of_the_same_messages_remove_each_once(box):
    trash = folder_of(box, "trash")
    keep = fill(trash, 3, deleted=False, tag="keep")
    for round_ in range(ROUNDS):
        uids = fill(trash, 10, tag=f"r{round_}")
        first, second, third = run_together(
            partial(expunge, trash, uids),
            partial(expunge, trash, uids, only_deleted=False),
            partial(expunge, trash, uids[:5]),
        )
        assert sorted(first + second + third) == uids
        assert_counts_exact(box)
    assert sorted(Message.objects.filter(folder=trash).values_list("uid", flat=True)) == keep


@pytest.mark.django_db(transaction=True)
def test_two_sessions_moving_the_same_messages_move_each_once(box):
    inbox, archive = folder_of(box, "inbox"), folder_of(box, "archive")
    for round_ in range(ROUNDS):
        uids = fill(inbox, 8, deleted=False, tag=f"r{round_}")
        first, second = run_together(partial(move, inbox, uids, archive),
                                     partial(move, inbox, uids, archive))
        assert sorted([*first, *second]) == uids  # each source UID moved by one of them
        assert_counts_exact(box)
    assert Message.objects.filter(folder=archive).count() == 8 * ROUNDS
    assert not Message.objects.filter(folder=inbox).exists()


@pytest.mark.django_db(transaction=True)
def test_moves_in_opposite_directions_do_not_deadlock(box):
    inbox, archive = folder_of(box, "inbox"), folder_of(box, "archive")
    fill(inbox, 10, deleted=False, tag="in")
    fill(archive, 10, deleted=False, tag="ar")

    def shuttle(source, target):
        def work():
            for _ in range(ROUNDS):
                folders.move_messages(fresh(source), None, fresh(target))
                folders.copy_messages(fresh(target), None, fresh(source))
                folders.expunge(fresh(source), None, only_deleted=False)
        return work

    run_together(shuttle(inbox, archive), shuttle(archive, inbox))
    assert_counts_exact(box)


@pytest.mark.django_db(transaction=True)
def test_expunge_racing_append_delivery_flags_and_moves_keeps_counts_exact(box):
    inbox, archive = folder_of(box, "inbox"), folder_of(box, "archive")
    fill(inbox, 10, deleted=False, tag="seed")

    def deliverer():
        for n in range(12):
            delivery.deliver_message(make_message(subject=f"d{n}"), ["race@example.test"])

    def appender():
        for n in range(12):
            delivery.append_message(fresh(inbox), make_message(subject=f"a{n}"),
                                    flags=["\\Deleted"] if n % 2 else [])

    def expunger():
        for _ in range(12):
            flags.set_flags(fresh(inbox), None, ["\\Deleted"], "add")
            folders.expunge(fresh(inbox))

    def flagger():
        for n in range(12):
            flags.set_flags(fresh(inbox), None, ["\\Seen"], "add" if n % 2 else "remove")

    def mover():
        for _ in range(12):
            folders.move_messages(fresh(inbox), None, archive)
            folders.move_messages(fresh(archive), None, inbox)

    run_together(deliverer, appender, expunger, expunger, flagger, mover)
    assert_counts_exact(box)


@pytest.mark.django_db(transaction=True)
def test_last_copy_expunged_while_the_same_bytes_arrive_keeps_the_bytes_exactly_once(box):
    other = accounts.create_mailbox("other@example.test", "pw")
    inbox = folder_of(box, "inbox")
    for round_ in range(ROUNDS * 2):
        raw = make_message(subject=f"same bytes {round_}")
        (row,) = delivery.deliver_message(raw, ["race@example.test"]).delivered
        run_together(
            partial(expunge, inbox, [row.uid], only_deleted=False),
            partial(delivery.deliver_message, raw, ["other@example.test"]),
        )
        # The arriving copy keeps its bytes; nothing refers to bytes that are gone.
        (kept,) = Message.objects.filter(mailbox=other, subject=f"same bytes {round_}")
        assert Blob.objects.filter(pk=kept.blob_id).exists()
    assert not Message.objects.filter(folder=inbox).exists()
    assert_counts_exact(box)
    assert_counts_exact(other)
    orphans = Blob.objects.exclude(messages__isnull=False)
    assert not orphans.exists()


@pytest.mark.django_db(transaction=True)
def test_copies_of_the_last_copy_being_expunged_keep_their_bytes(box):
    inbox, archive = folder_of(box, "inbox"), folder_of(box, "archive")
    for round_ in range(ROUNDS):
        uids = fill(inbox, 4, deleted=False, tag=f"r{round_}")
        copied, removed = run_together(
            partial(copy, inbox, uids, archive),
            partial(expunge, inbox, uids, only_deleted=False),
        )
        assert sorted(removed) == uids
        assert len(copied) in (0, 4)  # before the expunge or after it, never half
        assert_counts_exact(box)
    shas = Message.objects.filter(mailbox=box).values_list("blob_id", flat=True)
    assert Blob.objects.filter(pk__in=shas).count() == len(set(shas))
    assert not Blob.objects.exclude(messages__isnull=False).exists()
