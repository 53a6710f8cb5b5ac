"""Batched delivery passes (services/outbound/relay.py, the relay throughput work): a pass takes
the due messages for its destinations along, over one SMTP session, recording each destination
in one transaction; the lock rules still hold for every message of a batch. (Grouped
submission is tested with the submission service and its door.)"""

import time
from datetime import timedelta

from django.utils import timezone

from mailcore import tasks
from mailcore.models import DeliveryAttempt, OutboundMessage, OutboundRecipient
from mailcore.services.outbound.queue import enqueue_outbound
from mailcore.services.outbound.relay import deliver_outbound, relay_batch
from mailcore.transports import reset_transport
from tests.factories import make_message
from tests.outbound.sink import Behaviour, serve_in_thread, start_silent

SENDER = "demo@example.test"


def queue(*addresses: str, **kwargs) -> list[int]:
    return [enqueue_outbound(make_message(sender=SENDER), SENDER, [a], **kwargs)
            .outbound_id for a in addresses]


def state_of(message_id: int) -> str:
    return OutboundRecipient.objects.get(message_id=message_id).state


def test_due_messages_for_the_same_destination_ride_along_over_one_session(mailbox, remote_mx):
    far = remote_mx("remote.test")
    elsewhere = remote_mx("other.test")
    ids = queue(*(f"r{n}@remote.test" for n in range(5)))
    [other] = queue("x@other.test")
    report = deliver_outbound(ids[2])
    assert report.claimed and report.delivered == 5
    assert far.handler.sessions == 1
    assert sorted(r.rcpt_tos[0] for r in far.received) == [f"r{n}@remote.test"
                                                           for n in range(5)]
    assert elsewhere.received == []  # another destination waits for its own task
    assert state_of(other) == "queued"
    for pk in ids:
        entry = OutboundMessage.objects.get(pk=pk)
        assert entry.finished and entry.lock_token == "" and entry.locked_until is None
        assert state_of(pk) == "delivered"
    assert DeliveryAttempt.objects.filter(recipient__message_id__in=ids).count() == 5
    # Nothing is sent twice: the other tasks of the batch find their messages finished.
    for pk in ids:
        assert deliver_outbound(pk).claimed is False
    assert len(far.received) == 5


def test_a_batch_leaves_locked_held_and_waiting_messages_alone(mailbox, remote_mx):
    far = remote_mx("remote.test")
    own, locked, waiting = queue("a@remote.test", "b@remote.test", "c@remote.test")
    [held] = queue("d@remote.test", hold_until=timezone.now() + timedelta(minutes=5))
    OutboundMessage.objects.filter(pk=locked).update(
        lock_token="another-worker", locked_until=timezone.now() + timedelta(minutes=5))
    OutboundRecipient.objects.filter(message_id=waiting).update(
        state="deferred", attempts=1, next_attempt=timezone.now() + timedelta(minutes=5))
    report = deliver_outbound(own)
    assert report.delivered == 1
    assert [r.rcpt_tos for r in far.received] == [["a@remote.test"]]
    assert (state_of(locked), state_of(waiting), state_of(held)) == (
        "queued", "deferred", "queued")
    assert OutboundMessage.objects.get(pk=locked).lock_token == "another-worker"


def test_a_task_run_again_after_its_worker_died_takes_back_every_message_it_held(
    mailbox, remote_mx
):
    far = remote_mx("remote.test")
    first, rider = queue("a@remote.test", "b@remote.test")
    # The first run claimed its message and a rider, then its process was killed.
    OutboundMessage.objects.filter(pk__in=[first, rider]).update(
        lock_token="task-1", locked_until=timezone.now() + timedelta(minutes=15))
    assert deliver_outbound(first, token="task-2").claimed is False
    report = deliver_outbound(first, token="task-1")
    assert report.delivered == 2
    assert sorted(r.rcpt_tos[0] for r in far.received) == ["a@remote.test", "b@remote.test"]
    assert not OutboundMessage.objects.exclude(lock_token="").exists()


def test_the_batch_task_delivers_its_messages_and_reports_them(mailbox, remote_mx):
    far = remote_mx("remote.test")
    ids = queue("a@remote.test", "b@remote.test", "c@remote.test")
    assert tasks.deliver_outbound_batch(ids) == {
        "claimed": True, "delivered": 3, "deferred": 0, "bounced": 0, "expired": 0}
    assert len(far.received) == 3 and far.handler.sessions == 1


def test_a_batch_over_its_byte_budget_leaves_the_rest_released_for_a_new_task(
    mailbox, remote_mx, settings
):
    far = remote_mx("remote.test")
    ids = queue("a@remote.test", "b@remote.test", "c@remote.test")
    settings.CORREIO_OUTBOUND_BATCH_BYTES = OutboundMessage.objects.get(pk=ids[0]).size + 10
    report = relay_batch(ids)
    assert report.delivered == 1 and report.more and report.leftover == ids[1:]
    assert [r.rcpt_tos for r in far.received] == [["a@remote.test"]]
    assert [state_of(pk) for pk in ids[1:]] == ["queued", "queued"]
    assert not OutboundMessage.objects.exclude(lock_token="").exists()


def test_a_batch_of_one_takes_no_rider(mailbox, remote_mx):
    far = remote_mx("remote.test")
    ids = queue("a@remote.test", "b@remote.test")
    assert deliver_outbound(ids[0], batch=1).delivered == 1
    assert [r.rcpt_tos for r in far.received] == [["a@remote.test"]]
    assert state_of(ids[1]) == "queued"


def test_a_destination_that_never_answers_defers_the_whole_batch_after_one_timeout(
    mailbox, settings
):
    settings.CORREIO_RELAY_COMMAND_TIMEOUT = 1
    with serve_in_thread(start_silent) as silent:
        settings.CORREIO_MX_OVERRIDES = {"remote.test": [("127.0.0.1", silent.port)]}
        reset_transport()
        ids = queue("a@remote.test", "b@remote.test", "c@remote.test")
        started = time.monotonic()
        report = deliver_outbound(ids[0])
        elapsed = time.monotonic() - started
    assert report.deferred == 3
    assert elapsed < 2.5  # one greeting timeout, not one per message
    for pk in ids:
        recipient = OutboundRecipient.objects.get(message_id=pk)
        assert recipient.state == "deferred" and recipient.attempts == 1
        assert "greeting" in recipient.last_reply
        assert recipient.next_attempt > timezone.now() + timedelta(seconds=250)


def test_mixed_results_in_one_batch_are_each_recorded_with_their_own_dsn(mailbox, remote_mx):
    far = remote_mx("remote.test", behaviour=Behaviour(rcpt_replies={
        "gone@remote.test": ["550 5.1.1 no such user"],
        "busy@remote.test": ["452 4.2.2 mailbox full"],
    }))
    ok, gone, busy = queue("ok@remote.test", "gone@remote.test", "busy@remote.test")
    report = deliver_outbound(ok)
    assert (report.delivered, report.bounced, report.deferred) == (1, 1, 1)
    assert (state_of(ok), state_of(gone), state_of(busy)) == ("delivered", "bounced", "deferred")
    assert OutboundRecipient.objects.get(message_id=busy).last_reply == "452 4.2.2 mailbox full"
    assert [r.rcpt_tos for r in far.received] == [["ok@remote.test"]]
    # One DSN, for the bounced recipient, in the sender's INBOX.
    inbox = mailbox.folders.get(role="inbox")
    assert list(inbox.messages.values_list("subject", flat=True)) == [
        "Undelivered Mail Returned to Sender"]
    assert OutboundMessage.objects.get(pk=busy).finished is False
    assert OutboundMessage.objects.get(pk=gone).finished is True


def test_a_spent_task_still_takes_what_is_due_at_its_destination(mailbox, remote_mx):
    far = remote_mx("remote.test")
    spent, waiting = queue("a@remote.test", "b@remote.test")
    # Another pass took the first message along and delivered it; its own task comes late.
    OutboundRecipient.objects.filter(message_id=spent).update(state="delivered", attempts=1)
    OutboundMessage.objects.filter(pk=spent).update(finished=True)
    report = deliver_outbound(spent)
    assert report.claimed is False and report.delivered == 1
    assert [r.rcpt_tos for r in far.received] == [["b@remote.test"]]
    assert state_of(waiting) == "delivered"
