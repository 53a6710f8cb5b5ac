"""The folder snapshot behind SELECT: served from what this process read before plus what changed
since (mod-sequences and expunge tombstones), it must always equal what the store holds."""

from mailcore.models import Message
from mailcore.services import delivery, flags, folders, imap_read
from tests.factories import make_message


def fill(mailbox, count, start=0):
    for i in range(start, start + count):
        delivery.deliver_to_mailboxes(make_message(subject=f"s{i}"), [mailbox.pk])


def truth(folder) -> list[int]:
    return list(Message.objects.filter(folder=folder).order_by("uid").values_list("uid", flat=True))


def test_a_cached_snapshot_follows_new_mail_expunges_moves_and_keywords(mailbox, inbox):
    fill(mailbox, 6)
    first = imap_read.select_folder(mailbox, "INBOX")
    assert list(first.uids) == [1, 2, 3, 4, 5, 6]
    assert first.keywords == [] and first.first_unseen_uid == 1

    flags.set_flags(inbox, [1, 2, 4], ["\\Seen"], "add")
    flags.set_flags(inbox, [2, 5], ["\\Deleted", "$Important"], "add")
    folders.expunge(inbox)
    archive = folders.get_folder(mailbox, "Archive")
    folders.move_messages(inbox, [3], archive)
    fill(mailbox, 2, start=6)
    flags.set_flags(inbox, [7], ["todo"], "add")

    second = imap_read.select_folder(mailbox, "INBOX")
    assert list(second.uids) == truth(inbox) == [1, 4, 6, 7, 8]
    assert second.keywords == ["todo"]  # $Important went with the expunged messages
    assert second.first_unseen_uid == 6
    assert second.folder.highestmodseq == type(inbox).objects.get(pk=inbox.pk).highestmodseq
    moved = imap_read.select_folder(mailbox, "Archive")
    assert len(moved.uids) == 1

    # A keyword removed from every message stays defined, as Dovecot keeps it.
    flags.set_flags(inbox, [7], ["todo"], "remove")
    assert imap_read.select_folder(mailbox, "INBOX").keywords == ["todo"]

    # The session's copy is its own: changing it leaves the cache alone.
    second.uids.append(99)
    assert list(imap_read.select_folder(mailbox, "INBOX").uids) == [1, 4, 6, 7, 8]


def test_first_unseen_and_keywords_are_right_on_a_cold_snapshot(mailbox, inbox):
    fill(mailbox, 5)
    flags.set_flags(inbox, [1, 2, 3, 5], ["\\Seen"], "add")
    flags.set_flags(inbox, [2], ["work"], "add")
    imap_read._snapshots.clear()
    snapshot = imap_read.select_folder(mailbox, "INBOX")
    assert snapshot.first_unseen_uid == 4
    assert snapshot.keywords == ["work"]
    flags.set_flags(inbox, [4], ["\\Seen"], "add")
    assert imap_read.select_folder(mailbox, "INBOX").first_unseen_uid is None
