"""The mailbox service layer: delivery, append, flags, copy, move, expunge, folders, changes."""

from datetime import UTC, datetime

import pytest

from mailcore import events
from mailcore.exceptions import (
    FolderExists,
    FolderHasChildren,
    FolderNotFound,
    FolderProtected,
    InvalidFolderName,
    MailError,
    MessageTooLarge,
    QuotaExceeded,
    RelayDenied,
)
from mailcore.models import Alias, Blob, Folder, Mailbox, Message
from mailcore.services import delivery, flags, folders
from mailcore.services.common import UidRanges
from tests.factories import make_message


def refresh(folder: Folder) -> Folder:
    folder.refresh_from_db()
    return folder


def test_delivery_stores_the_bytes_unchanged_and_caches_parsed_fields(mailbox, inbox):
    raw = make_message(
        subject="Quarterly report",
        body="Numbers inside.\n",
        attachments=[("report.pdf", b"%PDF-1.4 fake", "application/pdf")],
    )
    result = delivery.deliver_message(raw, ["demo@example.test"])
    message = Message.objects.get(pk=result.delivered[0].message_pk)
    assert bytes(message.blob.data) == raw
    assert message.size == len(raw)
    assert message.subject == "Quarterly report"
    assert message.from_addr == "alice@remote.test"
    assert message.from_name == "Alice Example"
    assert message.has_attachments
    assert "Numbers inside." in message.preview
    assert message.envelope[1] == "Quarterly report"
    assert message.structure["type"] == "multipart"
    assert message.uid == 1 and message.folder == inbox
    inbox = refresh(inbox)
    assert (inbox.uidnext, inbox.message_count, inbox.unseen_count) == (2, 1, 1)
    assert Mailbox.objects.get(pk=mailbox.pk).used_bytes == len(raw)


def test_one_blob_serves_every_recipient(domain, make_mailbox):
    alice = make_mailbox("alice@example.test")
    bob = make_mailbox("bob@example.test")
    Alias.objects.create(domain=domain, local_part="team", destinations="alice@example.test bob@example.test")
    raw = make_message(to="team@example.test")
    result = delivery.deliver_message(raw, ["team@example.test", "alice@example.test"])
    assert sorted(d.mailbox_id for d in result.delivered) == sorted([alice.pk, bob.pk])
    assert Blob.objects.count() == 1
    assert Message.objects.count() == 2


def test_remote_alias_destinations_are_returned_not_delivered(domain, mailbox):
    Alias.objects.create(domain=domain, local_part="fwd", destinations="demo@example.test out@remote.test")
    result = delivery.deliver_message(make_message(), ["fwd@example.test"])
    assert result.remote == ["out@remote.test"]
    assert len(result.delivered) == 1


def test_delivery_to_a_foreign_domain_stores_nothing(mailbox):
    with pytest.raises(RelayDenied):
        delivery.deliver_message(make_message(), ["demo@example.test", "x@elsewhere.test"])
    assert Message.objects.count() == 0 and Blob.objects.count() == 0


def test_uids_strictly_increase_and_are_never_reused(mailbox, inbox):
    for _ in range(3):
        delivery.deliver_message(make_message(), ["demo@example.test"])
    Message.objects.filter(folder=inbox, uid=3).update(deleted=True)
    assert folders.expunge(inbox) == [3]
    delivery.deliver_message(make_message(), ["demo@example.test"])
    assert list(Message.objects.filter(folder=inbox).values_list("uid", flat=True)) == [1, 2, 4]


def test_quota_refuses_delivery_that_would_overflow(make_mailbox):
    small = make_mailbox("small@example.test", quota=3000)
    delivery.deliver_message(make_message(body="x" * 1000), ["small@example.test"])
    with pytest.raises(QuotaExceeded):
        delivery.deliver_message(make_message(body="y" * 2500), ["small@example.test"])
    assert Message.objects.filter(mailbox=small).count() == 1
    # Unenforced delivery (SMTP checked the quota at RCPT) still stores it.
    delivery.deliver_message(make_message(body="y" * 2500), ["small@example.test"], enforce_quota=False)
    assert Message.objects.filter(mailbox=small).count() == 2


def test_append_keeps_flags_keywords_and_date(mailbox):
    sent = folders.get_folder(mailbox, "Sent")
    when = datetime(2020, 5, 17, 10, 30, tzinfo=UTC)
    message = delivery.append_message(
        sent, make_message(), flags=["\\Seen", "\\Flagged", "$Forwarded", "\\Recent"], internal_date=when
    )
    assert message.flags == ["\\Seen", "\\Flagged", "$Forwarded"]
    assert message.internal_date == when
    sent = refresh(sent)
    assert (sent.message_count, sent.unseen_count) == (1, 0)


def test_append_refuses_oversized_messages(mailbox, inbox):
    with pytest.raises(MessageTooLarge):
        delivery.append_message(inbox, make_message(body="z" * 5000), max_size=1000)


def test_flags_replace_add_remove_and_keep_counts(mailbox, inbox):
    for _ in range(4):
        delivery.deliver_message(make_message(), ["demo@example.test"])
    before = refresh(inbox).highestmodseq
    result = flags.set_flags(inbox, [1, 2], ["\\Seen"], "add")
    assert [c.uid for c in result.changed] == [1, 2]
    assert result.modseq == before + 1
    assert refresh(inbox).unseen_count == 2
    # Adding a flag a message already has changes nothing and bumps no mod-sequence.
    assert flags.set_flags(inbox, [1], ["\\Seen"], "add").changed == []
    flags.set_flags(inbox, UidRanges(((1, 4),)), ["\\Flagged", "todo"], "replace")
    assert refresh(inbox).unseen_count == 4
    flags.set_flags(inbox, [3], ["todo"], "remove")
    assert Message.objects.get(folder=inbox, uid=3).flags == ["\\Flagged"]
    assert Message.objects.get(folder=inbox, uid=4).flags == ["\\Flagged", "todo"]
    with pytest.raises(ValueError):
        flags.set_flags(inbox, [1], ["\\Seen"], "toggle")


def test_unchanged_since_skips_messages_changed_later(mailbox, inbox):
    for _ in range(2):
        delivery.deliver_message(make_message(), ["demo@example.test"])
    mark = refresh(inbox).highestmodseq
    flags.set_flags(inbox, [2], ["\\Seen"], "add")
    result = flags.set_flags(inbox, [1, 2], ["\\Flagged"], "add", unchanged_since=mark)
    assert [c.uid for c in result.changed] == [1]
    assert result.modified == [2]


def test_huge_uid_ranges_cost_nothing(mailbox, inbox):
    delivery.deliver_message(make_message(), ["demo@example.test"])
    result = flags.set_flags(inbox, UidRanges(((1, 4294967295),)), ["\\Seen"], "add")
    assert [c.uid for c in result.changed] == [1]
    many = UidRanges(tuple((i, i) for i in range(1, 1000, 2)))
    assert [c.uid for c in flags.set_flags(inbox, many, ["\\Answered"], "add").changed] == [1]


def test_copy_gives_new_uids_and_shares_the_blob(mailbox, inbox):
    for _ in range(3):
        delivery.deliver_message(make_message(), ["demo@example.test"])
    flags.set_flags(inbox, [2], ["\\Seen", "\\Flagged"], "add")
    archive = folders.get_folder(mailbox, "Archive")
    mapping = folders.copy_messages(inbox, [2, 3], archive)
    assert mapping == {2: 1, 3: 2}
    copied = Message.objects.get(folder=archive, uid=1)
    assert copied.flags == ["\\Seen", "\\Flagged"]
    assert copied.blob_id == Message.objects.get(folder=inbox, uid=2).blob_id
    archive = refresh(archive)
    assert (archive.message_count, archive.unseen_count, archive.uidnext) == (2, 1, 3)
    assert Blob.objects.count() == 3


def test_copy_counts_against_quota(make_mailbox):
    box = make_mailbox("q@example.test", quota=4000)
    inbox = box.folders.get(role="inbox")
    delivery.deliver_message(make_message(body="a" * 1500), ["q@example.test"])
    with pytest.raises(QuotaExceeded):
        folders.copy_messages(inbox, [1], box.folders.get(role="archive"))
        folders.copy_messages(inbox, [1], box.folders.get(role="junk"))


def test_move_renumbers_in_the_target_and_expunges_the_source(mailbox, inbox):
    for _ in range(3):
        delivery.deliver_message(make_message(), ["demo@example.test"])
    trash = folders.get_folder(mailbox, "Trash")
    used = Mailbox.objects.get(pk=mailbox.pk).used_bytes
    assert folders.move_messages(inbox, [1, 3], trash) == {1: 1, 3: 2}
    assert list(Message.objects.filter(folder=inbox).values_list("uid", flat=True)) == [2]
    assert refresh(inbox).message_count == 1 and refresh(trash).message_count == 2
    assert Mailbox.objects.get(pk=mailbox.pk).used_bytes == used
    changes = folders.changes_since(inbox, 0)
    assert changes.expunged == [1, 3]


def test_expunge_removes_only_deleted_unless_told_and_frees_blobs(mailbox, inbox):
    for _ in range(3):
        delivery.deliver_message(make_message(), ["demo@example.test"])
    flags.set_flags(inbox, [1], ["\\Deleted"], "add")
    assert folders.expunge(inbox, [1, 2]) == [1]
    assert folders.expunge(inbox, [2], only_deleted=False) == [2]
    assert Blob.objects.count() == 1
    assert Mailbox.objects.get(pk=mailbox.pk).used_bytes == Message.objects.get().size
    inbox = refresh(inbox)
    assert (inbox.message_count, inbox.unseen_count) == (1, 1)


def test_changes_since_reports_new_changed_and_expunged(mailbox, inbox):
    for _ in range(3):
        delivery.deliver_message(make_message(), ["demo@example.test"])
    mark = refresh(inbox).highestmodseq
    flags.set_flags(inbox, [1], ["\\Seen"], "add")
    folders.expunge(inbox, [2], only_deleted=False)
    delivery.deliver_message(make_message(), ["demo@example.test"])
    changes = folders.changes_since(inbox, mark)
    assert [m.uid for m in changes.messages] == [1, 4]
    assert changes.expunged == [2]
    assert changes.highestmodseq == refresh(inbox).highestmodseq


def test_folders_are_created_with_parents_and_listed_special_first(mailbox):
    folders.create_folder(mailbox, "Projects/2026/Correio")
    names = [f.name for f in folders.list_folders(mailbox)]
    assert names[:6] == ["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"]
    assert names[6:] == ["Projects", "Projects/2026", "Projects/2026/Correio"]
    with pytest.raises(FolderExists):
        folders.create_folder(mailbox, "Projects")
    with pytest.raises(FolderExists):
        folders.create_folder(mailbox, "inbox")


@pytest.mark.parametrize("name", ["", "a//b", "/lead", "trail/", "star*", "per%cent", "bell\x07", "x" * 501])
def test_bad_folder_names_are_refused(mailbox, name):
    with pytest.raises(InvalidFolderName):
        folders.create_folder(mailbox, name)


def test_names_that_look_like_paths_or_other_users_stay_in_ones_own_namespace(make_mailbox):
    alice = make_mailbox("alice@example.test")
    bob = make_mailbox("bob@example.test")
    # Path-like levels are refused outright (issue 15), so nothing reaches another namespace.
    with pytest.raises(InvalidFolderName):
        folders.create_folder(alice, "../bob@example.test/INBOX")
    folder = folders.create_folder(alice, "bob@example.test/INBOX")
    assert folder.mailbox == alice
    assert not Folder.objects.filter(mailbox=bob, name__contains="bob@").exists()


def test_rename_moves_subfolders(mailbox):
    folders.create_folder(mailbox, "Work/Old")
    folders.rename_folder(mailbox, "Work", "Jobs/Work")
    names = set(Folder.objects.filter(mailbox=mailbox, role="").values_list("name", flat=True))
    assert names == {"Jobs", "Jobs/Work", "Jobs/Work/Old"}
    with pytest.raises(FolderNotFound):
        folders.rename_folder(mailbox, "Work", "Other")
    with pytest.raises(InvalidFolderName):
        folders.rename_folder(mailbox, "Jobs", "Jobs/Inner")
    with pytest.raises(FolderProtected):
        folders.rename_folder(mailbox, "Sent", "Outgoing")


def test_renaming_inbox_moves_its_messages_and_keeps_inbox(mailbox, inbox):
    for _ in range(2):
        delivery.deliver_message(make_message(), ["demo@example.test"])
    target = folders.rename_folder(mailbox, "INBOX", "Old mail")
    assert refresh(target).message_count == 2
    inbox = refresh(inbox)
    assert inbox.message_count == 0 and inbox.name == "INBOX" and inbox.uidnext == 3


def test_delete_folder_rules(mailbox):
    folder = folders.create_folder(mailbox, "Tmp/Child")
    delivery.append_message(folder, make_message())
    with pytest.raises(FolderProtected):
        folders.delete_folder(mailbox, "Trash")
    with pytest.raises(FolderHasChildren):
        folders.delete_folder(mailbox, "Tmp")
    folders.delete_folder(mailbox, "Tmp/Child")
    folders.delete_folder(mailbox, "Tmp")
    assert Message.objects.count() == 0 and Blob.objects.count() == 0
    assert Mailbox.objects.get(pk=mailbox.pk).used_bytes == 0


def test_recreated_folder_gets_a_new_uidvalidity(mailbox):
    first = folders.create_folder(mailbox, "Again")
    folders.delete_folder(mailbox, "Again")
    second = folders.create_folder(mailbox, "Again")
    assert (first.name, first.uidvalidity) != (second.name, second.uidvalidity)


def test_subscriptions_are_names_that_outlive_their_folders(mailbox):
    assert folders.subscriptions(mailbox) == {"INBOX", "Sent", "Drafts", "Trash", "Junk",
                                              "Archive"}
    folders.create_folder(mailbox, "News/Local")
    assert {"News", "News/Local"} & folders.subscriptions(mailbox) == {"News/Local"}
    folders.subscribe_folder(mailbox, "News/Local", False)
    assert "News/Local" not in folders.subscriptions(mailbox)
    folders.create_folder(mailbox, "Quiet", subscribe=False)
    assert "Quiet" not in folders.subscriptions(mailbox)
    folders.subscribe_folder(mailbox, "News", True)
    folders.subscribe_folder(mailbox, "News/Local", True)
    folders.rename_folder(mailbox, "News", "Old/News")
    assert {"Old/News", "Old/News/Local"} <= folders.subscriptions(mailbox)
    assert not {"News", "News/Local"} & folders.subscriptions(mailbox)
    folders.delete_folder(mailbox, "Old/News/Local")
    assert "Old/News/Local" in folders.subscriptions(mailbox)  # RFC 3501 §6.3.6
    folders.subscribe_folder(mailbox, "Old/News/Local", False)
    assert "Old/News/Local" not in folders.subscriptions(mailbox)
    with pytest.raises(FolderNotFound):
        folders.subscribe_folder(mailbox, "Nowhere", True)


def test_subscriptions_are_capped(mailbox, monkeypatch):
    monkeypatch.setattr(folders, "MAX_SUBSCRIPTIONS", 7)
    folders.create_folder(mailbox, "One", subscribe=False)
    folders.create_folder(mailbox, "Two", subscribe=False)
    folders.subscribe_folder(mailbox, "One")  # the 7th, after the 6 special folders
    with pytest.raises(MailError, match="LIMIT"):
        folders.subscribe_folder(mailbox, "Two")
    folders.subscribe_folder(mailbox, "One")  # already there: not a new one


def test_thread_ids_join_replies_across_folders(mailbox, inbox):
    delivery.deliver_message(make_message(message_id="<root@x>"), ["demo@example.test"])
    sent = folders.get_folder(mailbox, "Sent")
    reply = delivery.append_message(
        sent, make_message(message_id="<r1@x>", in_reply_to="<root@x>", references="<root@x>")
    )
    delivery.deliver_message(
        make_message(message_id="<r2@x>", in_reply_to="<r1@x>"), ["demo@example.test"]
    )
    threads = set(Message.objects.filter(mailbox=mailbox).values_list("thread_id", flat=True))
    assert threads == {reply.thread_id}
    delivery.deliver_message(make_message(message_id="<other@x>"), ["demo@example.test"])
    assert Message.objects.filter(mailbox=mailbox).values("thread_id").distinct().count() == 2


@pytest.mark.django_db(transaction=True)
def test_changes_publish_events_after_commit(domain):
    from mailcore.services import accounts

    box = accounts.create_mailbox("ev@example.test", "pw")
    received = []
    unsubscribe = events.subscribe(box.pk, received.append)
    try:
        delivery.deliver_message(make_message(), ["ev@example.test"])
        inbox = box.folders.get(role="inbox")
        flags.set_flags(inbox, [1], ["\\Seen"], "add")
        folders.expunge(inbox, [1], only_deleted=False)
        import time

        deadline = time.time() + 5
        while len(received) < 3 and time.time() < deadline:
            time.sleep(0.02)
    finally:
        unsubscribe()
    assert [e.kind for e in received] == ["new", "flags", "expunge"]
    assert all(e.folder_id == inbox.pk for e in received)
    assert received[-1].modseq == Folder.objects.get(pk=inbox.pk).highestmodseq
