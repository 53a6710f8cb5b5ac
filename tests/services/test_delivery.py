"""The delivery path: the RCPT-time recipient check, batched delivery, APPEND, quota."""

import pytest

from mailcore.blobstore import load_blob
from mailcore.exceptions import (
    AliasLoop,
    FolderNotFound,
    MailboxInactive,
    QuotaExceeded,
    RelayDenied,
    UnknownRecipient,
)
from mailcore.models import Alias, Blob, Domain, Folder, Mailbox, Message
from mailcore.services import accounts, delivery, folders
from mailcore.services.delivery import deliver_to_inboxes
from mailcore.services.recipients import check_recipient
from tests.factories import make_message


@pytest.fixture
def boxes(make_mailbox):
    return make_mailbox("demo@example.test"), make_mailbox("alice@example.test")


def test_check_recipient_resolves_mailboxes_and_aliases(boxes, domain):
    demo, alice = boxes
    Alias.objects.create(domain=domain, local_part="team",
                         destinations="demo@example.test alice@example.test")
    assert check_recipient("DEMO@example.test").mailbox_ids == [demo.pk]
    assert check_recipient("demo+tag@example.test").mailbox_ids == [demo.pk]
    assert check_recipient("team@example.test").mailbox_ids == [demo.pk, alice.pk]


def test_check_recipient_raises_the_service_errors(boxes, domain):
    demo, alice = boxes
    with pytest.raises(UnknownRecipient):
        check_recipient("nobody@example.test")
    with pytest.raises(RelayDenied):
        check_recipient("someone@elsewhere.test")
    Mailbox.objects.filter(pk=alice.pk).update(active=False)
    with pytest.raises(MailboxInactive):
        check_recipient("alice@example.test")
    Mailbox.objects.filter(pk=demo.pk).update(quota=100, used_bytes=100)
    with pytest.raises(QuotaExceeded):
        check_recipient("demo@example.test")


def test_a_mailbox_of_a_disabled_domain_is_not_a_local_recipient(boxes):
    Domain.objects.filter(name="example.test").update(active=False)
    with pytest.raises(RelayDenied):
        check_recipient("demo@example.test")


def test_an_alias_cycle_that_reaches_no_mailbox_is_a_loop(boxes, domain):
    Alias.objects.create(domain=domain, local_part="a", destinations="b@example.test")
    Alias.objects.create(domain=domain, local_part="b", destinations="a@example.test")
    with pytest.raises(AliasLoop):
        check_recipient("a@example.test")


def test_remote_alias_destinations_are_reported(boxes, domain):
    Alias.objects.create(domain=domain, local_part="fwd",
                         destinations="demo@example.test far@elsewhere.test")
    resolution = check_recipient("fwd@example.test")
    assert resolution.remote == ["far@elsewhere.test"]


def test_bare_postmaster_needs_a_postmaster_somewhere(boxes, make_mailbox):
    with pytest.raises(UnknownRecipient):
        check_recipient("postmaster")
    box = make_mailbox("postmaster@example.test")
    assert check_recipient("PostMaster").mailbox_ids == [box.pk]


def test_deliver_to_inboxes_stores_each_message_once_with_consecutive_uids(boxes):
    demo, alice = boxes
    first, second = make_message(subject="one"), make_message(subject="two")
    results = deliver_to_inboxes([(first, [demo.pk, alice.pk]), (second, [demo.pk, demo.pk])])
    assert [[d.uid for d in delivered] for delivered in results] == [[1, 1], [2]]
    assert Blob.objects.count() == 2
    inbox = Folder.objects.get(mailbox=demo, role="inbox")
    assert (inbox.uidnext, inbox.message_count, inbox.unseen_count) == (3, 2, 2)
    rows = list(Message.objects.filter(folder=inbox).order_by("uid"))
    assert [row.subject for row in rows] == ["one", "two"]
    assert [row.pk for row in rows] == [results[0][0].message_pk, results[1][0].message_pk]
    assert load_blob(rows[1].blob_id) == second
    demo.refresh_from_db()
    assert demo.used_bytes == len(first) + len(second)


def test_smtp_intake_and_imap_append_fill_the_same_fields(boxes):
    demo, alice = boxes
    raw = make_message(subject="same", html="<p>hi</p>", in_reply_to="<root@x.test>",
                       references="<root@x.test>")
    (mine,) = deliver_to_inboxes([(raw, [demo.pk])])
    inbox = Folder.objects.get(mailbox=alice, role="inbox")
    theirs = delivery.append_message(inbox, raw, flags=["\\Seen", "$Work"])
    fields = ["subject", "from_name", "from_addr", "to_addrs", "date", "message_id",
              "in_reply_to", "references", "preview", "has_attachments", "envelope",
              "structure", "thread_id", "size", "blob_id"]
    a = Message.objects.values(*fields).get(pk=mine[0].message_pk)
    b = Message.objects.values(*fields).get(pk=theirs.pk)
    assert a == b
    assert Message.objects.values_list("seen", "keywords").get(pk=theirs.pk) == (True, ["$Work"])
    inbox.refresh_from_db()
    assert (inbox.message_count, inbox.unseen_count) == (1, 0)
    alice.refresh_from_db()
    assert alice.used_bytes == len(raw)


def test_a_mailbox_without_an_inbox_makes_the_batch_fail_rather_than_lose_mail(boxes):
    demo, alice = boxes
    Folder.objects.filter(mailbox=alice, role="inbox").delete()
    with pytest.raises(FolderNotFound):
        deliver_to_inboxes([(make_message(), [demo.pk]), (make_message(), [alice.pk])])
    assert Message.objects.count() == 0 and Blob.objects.count() == 0


def test_append_over_quota_stores_nothing_and_copy_over_quota_neither(boxes):
    demo, _ = boxes
    inbox = Folder.objects.get(mailbox=demo, role="inbox")
    raw = make_message(body="y" * 1500 + "\n")
    delivery.append_message(inbox, raw)
    Mailbox.objects.filter(pk=demo.pk).update(quota=len(raw) + 10)
    with pytest.raises(QuotaExceeded):
        delivery.append_message(inbox, raw)
    archive = Folder.objects.get(mailbox=demo, role="archive")
    with pytest.raises(QuotaExceeded):
        folders.copy_messages(inbox, [1], archive)
    demo.refresh_from_db()
    assert demo.used_bytes == len(raw) and Message.objects.count() == 1
    assert check_recipient("demo@example.test").mailbox_ids == [demo.pk]  # room for a byte
    Mailbox.objects.filter(pk=demo.pk).update(quota=len(raw))
    with pytest.raises(QuotaExceeded):  # full: refused at RCPT already
        check_recipient("demo@example.test")


def test_deliver_to_inboxes_stores_nothing_when_one_mailbox_would_overflow(boxes):
    demo, alice = boxes
    Mailbox.objects.filter(pk=alice.pk).update(quota=3000)
    big = make_message(body="z" * 2000 + "\n")
    with pytest.raises(QuotaExceeded):
        deliver_to_inboxes([(big, [demo.pk, alice.pk]), (big, [alice.pk])])
    assert Message.objects.count() == 0 and Blob.objects.count() == 0
    assert Folder.objects.get(mailbox=alice, role="inbox").uidnext == 1


def test_accounts_resolution_and_intake_agree_on_the_common_case(boxes):
    demo, _ = boxes
    assert accounts.resolve_recipient("demo@example.test").mailbox_ids == (
        check_recipient("demo@example.test").mailbox_ids
    )


def test_deliver_to_inboxes_with_nothing_to_deliver_stores_nothing(boxes):
    assert deliver_to_inboxes([]) == []
    assert deliver_to_inboxes([(make_message(), [])]) == [[]]
    assert Blob.objects.count() == 0 and Message.objects.count() == 0
