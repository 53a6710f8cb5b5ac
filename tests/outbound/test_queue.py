"""Accepting mail into the outbound queue (services/outbound/queue.py): local recipients
delivered at once and remote ones queued, holds and taking a held message back, the stored
bytes, and the address checks."""

from datetime import timedelta

import pytest
from django.utils import timezone

from mailcore import blobstore
from mailcore.exceptions import InvalidAddress, UnknownRecipient
from mailcore.models import (
    Alias,
    Blob,
    OutboundMessage,
)
from mailcore.services.outbound.admin import (
    due_message_ids,
)
from mailcore.services.outbound.queue import cancel_held, enqueue_outbound
from mailcore.services.outbound.relay import deliver_outbound
from tests.factories import make_message
from tests.outbound.helpers import SENDER, inbox_messages, make_due, states


def test_local_recipients_are_delivered_at_once_and_remote_ones_queued(mailbox, make_mailbox):
    other = make_mailbox("bob@example.test")
    raw = make_message(sender=SENDER, to="bob@example.test, carol@remote.test")
    result = enqueue_outbound(raw, SENDER, ["bob@example.test", "carol@remote.test"],
                                       mailbox=mailbox)
    assert [d.mailbox_id for d in result.delivered] == [other.pk]
    assert result.queued == ["carol@remote.test"]
    entry = OutboundMessage.objects.get(pk=result.outbound_id)
    assert entry.mail_from == SENDER and entry.mailbox == mailbox and entry.size == len(raw)
    assert blobstore.load_blob(entry.blob_id) == raw
    assert states(entry.pk) == {"carol@remote.test": "queued"}
    assert entry.expires - entry.created == timedelta(days=5)


def test_a_held_message_waits_for_its_time_local_recipients_included(mailbox, make_mailbox,
                                                                     remote_mx):
    far = remote_mx("remote.test")
    bob = make_mailbox("bob@example.test")
    later = timezone.now() + timedelta(minutes=10)
    result = enqueue_outbound(make_message(), SENDER,
                                       ["bob@example.test", "x@remote.test"], hold_until=later)
    assert result.delivered == []
    assert states(result.outbound_id) == {"bob@example.test": "queued",
                                          "x@remote.test": "queued"}
    deliver_outbound(result.outbound_id)
    assert far.received == [] and inbox_messages(bob) == []
    assert result.outbound_id not in due_message_ids()
    OutboundMessage.objects.filter(pk=result.outbound_id).update(
        hold_until=timezone.now() - timedelta(seconds=1))
    make_due(result.outbound_id)
    deliver_outbound(result.outbound_id)
    assert len(far.received) == 1 and len(inbox_messages(bob)) == 1
    assert set(states(result.outbound_id).values()) == {"delivered"}


def test_undo_send_drops_a_held_message_of_its_own_mailbox_only(mailbox, make_mailbox):
    other = make_mailbox("bob@example.test")
    later = timezone.now() + timedelta(seconds=30)
    result = enqueue_outbound(make_message(), SENDER, ["x@remote.test"],
                                       mailbox=mailbox, hold_until=later)
    assert cancel_held(result.outbound_id, other) is False
    assert cancel_held(result.outbound_id, mailbox) is True
    assert not OutboundMessage.objects.exists()
    assert not Blob.objects.exists()


def test_a_blob_stays_while_the_queue_holds_it(mailbox):
    raw = make_message()
    result = enqueue_outbound(raw, SENDER, ["x@remote.test"])
    sha = blobstore.blob_id(raw)
    assert blobstore.delete_unreferenced([sha]) == 0
    assert Blob.objects.filter(pk=sha).exists()
    OutboundMessage.objects.filter(pk=result.outbound_id).delete()
    assert blobstore.delete_unreferenced([sha]) == 1


@pytest.mark.parametrize("address", [
    "a@b.test\r\nRCPT TO:<evil@x.test>",
    "a@b.test\nBcc: evil@x.test",
    "<a@b.test> SIZE=1",
    "a b@c.test",
    "no-at-sign",
    "a@nodot",
    "x" * 65 + "@b.test",
    "a@b..test",
])
def test_addresses_that_could_inject_a_line_or_are_malformed_are_refused(mailbox, address):
    with pytest.raises(InvalidAddress):
        enqueue_outbound(make_message(), SENDER, [address])
    with pytest.raises(InvalidAddress):
        enqueue_outbound(make_message(), address, ["x@remote.test"])
    assert not OutboundMessage.objects.exists()


def test_an_unknown_local_recipient_refuses_the_whole_message(mailbox):
    with pytest.raises(UnknownRecipient):
        enqueue_outbound(make_message(), SENDER, ["nobody@example.test",
                                                           "x@remote.test"])
    assert not OutboundMessage.objects.exists()


def test_an_alias_forwarding_outside_is_queued_by_the_delivery_result(mailbox):
    Alias.objects.create(domain=mailbox.domain, local_part="fwd",
                         destinations="demo@example.test, far@remote.test")
    result = enqueue_outbound(make_message(), "someone@remote.test",
                                       ["fwd@example.test"])
    assert [d.mailbox_id for d in result.delivered] == [mailbox.pk]
    assert result.queued == ["far@remote.test"]
