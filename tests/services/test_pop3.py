"""The POP3 services: the maildrop lease lock, the snapshot, the cached CRLF sizes, QUIT."""

import hashlib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mailcore.exceptions import MaildropLocked, MessageGone
from mailcore.mime.wire import crlf_size
from mailcore.models import Blob, MaildropLock, Message, Pop3Size
from mailcore.services import delivery, folders, pop3
from tests.factories import make_message


def deliver(mailbox, *raws):
    for raw in raws:
        delivery.deliver_message(raw, [mailbox.address])


def test_sizes_are_recorded_at_delivery_so_a_first_login_reads_no_bodies(mailbox, inbox):
    raws = [b"Subject: lf\n\nbody\n", make_message(subject="crlf"), b"Subject: end\r\n\r\nx"]
    deliver(mailbox, *raws)
    assert dict(Pop3Size.objects.values_list("blob_id", "size")) == {
        hashlib.sha256(raw).hexdigest(): crlf_size(raw) for raw in raws
    }
    with CaptureQueriesContext(connection) as queries:
        drop = pop3.open_maildrop(mailbox.pk)
    assert [(m.uid, m.size) for m in drop.messages] == [
        (n, crlf_size(raw)) for n, raw in enumerate(raws, 1)
    ]
    blob_reads = [q["sql"] for q in queries if '"mailcore_blob"."data"' in q["sql"]]
    assert blob_reads == []
    pop3.release_maildrop(mailbox.pk, drop.token)


def test_an_appended_message_has_its_size_recorded_too(mailbox, inbox):
    raw = b"Subject: appended\n\nline\n.dot\n"
    delivery.append_message(inbox, raw)
    assert Pop3Size.objects.get(pk=hashlib.sha256(raw).hexdigest()).size == crlf_size(raw)


def test_mail_stored_without_a_size_gets_it_lazily_once(mailbox, inbox):
    raws = [b"Subject: old\n\nbody\n", make_message(subject="older")]
    deliver(mailbox, *raws)
    Pop3Size.objects.all().delete()  # as mail stored before sizes were recorded at delivery
    drop = pop3.open_maildrop(mailbox.pk)
    assert [m.size for m in drop.messages] == [crlf_size(raw) for raw in raws]
    assert Pop3Size.objects.count() == 2
    pop3.release_maildrop(mailbox.pk, drop.token)
    Pop3Size.objects.filter(pk=hashlib.sha256(raws[0]).hexdigest()).delete()
    assert pop3.prepare_sizes(mailbox.pk) == 1
    assert pop3.prepare_sizes(mailbox.pk) == 0


def test_the_lock_is_exclusive_until_released_or_lapsed(mailbox):
    drop = pop3.open_maildrop(mailbox.pk, lease_seconds=60)
    with pytest.raises(MaildropLocked):
        pop3.open_maildrop(mailbox.pk)
    assert pop3.renew_maildrop(mailbox.pk, drop.token, 60)
    assert not pop3.renew_maildrop(mailbox.pk, "not-the-token", 60)
    pop3.release_maildrop(mailbox.pk, "not-the-token")
    with pytest.raises(MaildropLocked):
        pop3.open_maildrop(mailbox.pk)
    pop3.release_maildrop(mailbox.pk, drop.token)
    lapsed = pop3.open_maildrop(mailbox.pk, lease_seconds=-1)
    taker = pop3.open_maildrop(mailbox.pk)
    assert not pop3.renew_maildrop(mailbox.pk, lapsed.token, 60)
    assert MaildropLock.objects.get().token == taker.token


def test_close_expunges_the_marked_messages_and_releases_the_lock(mailbox, inbox):
    deliver(mailbox, *(make_message(subject=f"m{n}") for n in range(3)))
    drop = pop3.open_maildrop(mailbox.pk)
    assert pop3.close_maildrop(drop, [3, 1]) == [1, 3]
    assert list(Message.objects.filter(folder=inbox).values_list("uid", flat=True)) == [2]
    assert not MaildropLock.objects.exists()
    with pytest.raises(MaildropLocked):
        pop3.close_maildrop(drop, [2])
    assert Message.objects.filter(folder=inbox).count() == 1


def test_a_removed_message_is_gone_and_its_cached_size_goes_with_its_bytes(mailbox, inbox):
    deliver(mailbox, make_message(subject="short-lived"))
    drop = pop3.open_maildrop(mailbox.pk)
    assert pop3.load_message(drop.folder_id, 1).startswith(b"From:")
    folders.expunge(inbox, [1], only_deleted=False)
    with pytest.raises(MessageGone):
        pop3.load_message(drop.folder_id, 1)
    assert not Blob.objects.exists() and not Pop3Size.objects.exists()
    assert drop.unique_id(1) == f"{inbox.uidvalidity}.1"
