"""Looking after the queue (services/outbound/admin.py and its Django admin): lists with
filters, per-recipient history, the retry / bounce / delete actions, the sweep and the cleanup;
DKIM keys made and shown in the admin."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from mailcore.models import Blob, DkimKey, Message, OutboundMessage, OutboundRecipient
from mailcore.services.outbound.admin import (
    bounce_now,
    cleanup_outbound,
    due_message_ids,
    retry_now,
)
from mailcore.services.outbound.queue import delete_outbound, enqueue_outbound
from mailcore.services.outbound.relay import deliver_outbound
from tests.factories import make_message
from tests.outbound.helpers import SENDER, inbox_messages, states
from tests.outbound.sink import Behaviour


@pytest.fixture
def admin_client(client, db):
    user = get_user_model().objects.create_superuser("root", "root@example.test", "pw")
    client.force_login(user)
    return client


def test_the_queue_lists_filter_by_state_and_show_each_recipients_history(
    admin_client, mailbox, remote_mx
):
    remote_mx("remote.test", behaviour=Behaviour(data_replies=["451 4.3.0 greylisted"]))
    deferred = enqueue_outbound(make_message(subject="Waiting one"), SENDER,
                                         ["x@remote.test"]).outbound_id
    deliver_outbound(deferred)
    enqueue_outbound(make_message(subject="Fresh one"), SENDER, ["y@remote.test"])
    page = admin_client.get("/admin/mailcore/outboundmessage/").content.decode()
    assert "Waiting one" in page and "Fresh one" in page and "1 deferred" in page
    page = admin_client.get("/admin/mailcore/outboundmessage/?state=deferred").content.decode()
    assert "Waiting one" in page and "Fresh one" not in page
    page = admin_client.get(f"/admin/mailcore/outboundmessage/{deferred}/change/").content.decode()
    assert "451 4.3.0 greylisted" in page and "x@remote.test" in page
    recipient = OutboundRecipient.objects.get(message_id=deferred)
    page = admin_client.get(f"/admin/mailcore/outboundrecipient/{recipient.pk}/change/")
    assert "greylisted" in page.content.decode()
    listing = admin_client.get("/admin/mailcore/outboundrecipient/?state__exact=deferred")
    assert "x@remote.test" in listing.content.decode()
    assert admin_client.get("/admin/mailcore/outboundmessage/add/").status_code == 403


def test_retry_bounce_and_delete_actions(admin_client, mailbox, remote_mx):
    far = remote_mx("remote.test", behaviour=Behaviour(data_replies=["451 4.3.0 later"]))
    first = enqueue_outbound(make_message(), SENDER, ["a@remote.test"]).outbound_id
    deliver_outbound(first)
    url = "/admin/mailcore/outboundmessage/"
    admin_client.post(url, {"action": "retry_now", "_selected_action": [first]})
    deliver_outbound(first)
    assert OutboundRecipient.objects.get(message_id=first).state == "delivered"
    assert len(far.received) == 1

    second = enqueue_outbound(make_message(), SENDER, ["b@remote.test"]).outbound_id
    admin_client.post(url, {"action": "bounce_now", "_selected_action": [second]})
    assert OutboundRecipient.objects.get(message_id=second).state == "bounced"
    assert Message.objects.filter(mailbox=mailbox, subject__startswith="Undelivered").exists()

    sha = OutboundMessage.objects.get(pk=second).blob_id
    admin_client.post(url, {"action": "delete_from_queue", "_selected_action": [second]})
    assert not OutboundMessage.objects.filter(pk=second).exists()
    assert not Blob.objects.filter(pk=sha).exists()


def test_the_admin_generates_a_dkim_key_and_shows_the_txt_record(admin_client, domain):
    response = admin_client.post(
        "/admin/mailcore/domain/",
        {"action": "generate_dkim_key", "_selected_action": [domain.pk]},
        follow=True,
    )
    key = DkimKey.objects.get(domain=domain)
    page = response.content.decode()
    assert "correio._domainkey.example.test" in page
    assert key.txt_record in page and key.txt_record.startswith("v=DKIM1; k=rsa; p=MII")
    page = admin_client.get(f"/admin/mailcore/dkimkey/{key.pk}/change/").content.decode()
    assert key.public_key in page and "PRIVATE KEY" not in page
    assert admin_client.get("/admin/mailcore/dkimkey/add/").status_code == 200


def test_the_sweep_finds_due_retries_but_not_fresh_locked_or_held_entries(mailbox, settings):
    settings.CORREIO_OUTBOUND_DISPATCH = True
    fresh = enqueue_outbound(make_message(), SENDER, ["a@remote.test"]).outbound_id
    retry = enqueue_outbound(make_message(), SENDER, ["b@remote.test"]).outbound_id
    locked = enqueue_outbound(make_message(), SENDER, ["c@remote.test"]).outbound_id
    old = timezone.now() - timedelta(minutes=5)
    OutboundRecipient.objects.filter(message_id=retry).update(attempts=1, next_attempt=old)
    OutboundRecipient.objects.filter(message_id=locked).update(attempts=1, next_attempt=old)
    OutboundMessage.objects.filter(pk=locked).update(
        lock_token="t", locked_until=timezone.now() + timedelta(minutes=5))
    assert due_message_ids() == [retry]
    # A fresh entry whose task was lost (broker restarted) is swept after a sweep interval.
    OutboundRecipient.objects.filter(message_id=fresh).update(next_attempt=old)
    assert due_message_ids() == [fresh, retry]


def test_retry_now_makes_deferred_recipients_due(mailbox, remote_mx):
    far = remote_mx("remote.test", behaviour=Behaviour(data_replies=["451 4.3.0 later"]))
    result = enqueue_outbound(make_message(), SENDER, ["x@remote.test"])
    deliver_outbound(result.outbound_id)
    assert retry_now([result.outbound_id]) == 1
    deliver_outbound(result.outbound_id)
    assert states(result.outbound_id) == {"x@remote.test": "delivered"}
    assert len(far.received) == 1


def test_bounce_now_gives_up_with_a_dsn_and_delete_forgets_the_entry(mailbox):
    result = enqueue_outbound(make_message(), SENDER, ["x@remote.test",
                                                                "y@remote.test"])
    assert bounce_now([result.outbound_id]) == 2
    assert set(states(result.outbound_id).values()) == {"bounced"}
    [dsn] = inbox_messages(mailbox)
    assert dsn.subject == "Undelivered Mail Returned to Sender"
    entry = OutboundMessage.objects.get(pk=result.outbound_id)
    assert entry.finished
    sha = entry.blob_id
    assert delete_outbound([entry.pk]) == 1
    assert not Blob.objects.filter(pk=sha).exists()


def test_the_cleanup_forgets_old_finished_entries_only(mailbox):
    done = enqueue_outbound(make_message(), SENDER, ["x@remote.test"]).outbound_id
    waiting = enqueue_outbound(make_message(), SENDER, ["y@remote.test"]).outbound_id
    old = timezone.now() - timedelta(days=8)
    OutboundMessage.objects.filter(pk=done).update(finished=True, created=old)
    OutboundMessage.objects.filter(pk=waiting).update(created=old)
    assert cleanup_outbound() == 1
    assert list(OutboundMessage.objects.values_list("pk", flat=True)) == [waiting]
