"""One worker pass over the queue (services/outbound/relay.py) against recording SMTP servers on
loopback: grouping, retries, bounces (RFC 3464 DSNs), expiry, delayed notices and the
per-message lock. The pass is called as a plain function."""

import email
import email.policy
from datetime import timedelta

from django.utils import timezone

from mailcore.models import (
    Blob,
    DeliveryAttempt,
    OutboundMessage,
    OutboundRecipient,
)
from mailcore.services.outbound.queue import enqueue_outbound
from mailcore.services.outbound.relay import _claim, deliver_outbound
from mailcore.transports import reset_transport
from tests.factories import make_message
from tests.outbound.helpers import SENDER, inbox_messages, make_due, states
from tests.outbound.sink import Behaviour, serve_in_thread, start_silent


def test_two_remote_domains_are_delivered_in_one_pass_one_transaction_each(mailbox, remote_mx):
    first = remote_mx("remote.test")
    second = remote_mx("other.test")
    raw = make_message(sender=SENDER, to="a@remote.test")
    result = enqueue_outbound(
        raw, SENDER, ["a@remote.test", "b@remote.test", "c@other.test"]
    )
    report = deliver_outbound(result.outbound_id)
    assert report.claimed and report.delivered == 3
    assert [sorted(r.rcpt_tos) for r in first.received] == [["a@remote.test", "b@remote.test"]]
    assert [r.rcpt_tos for r in second.received] == [["c@other.test"]]
    assert first.received[0].mail_from == SENDER
    assert first.received[0].data == raw
    assert set(states(result.outbound_id).values()) == {"delivered"}
    assert OutboundMessage.objects.get(pk=result.outbound_id).finished
    # A second pass finds nothing to do and sends nothing again.
    deliver_outbound(result.outbound_id)
    assert len(first.received) == 1 and len(second.received) == 1


def test_a_far_side_answering_451_twice_then_250_gets_the_message_once_after_three_attempts(
    mailbox, remote_mx
):
    far = remote_mx("remote.test", behaviour=Behaviour(
        data_replies=["451 4.3.0 try again later", "451 4.3.0 still busy", None]))
    result = enqueue_outbound(make_message(sender=SENDER), SENDER, ["x@remote.test"])
    before = timezone.now()
    deliver_outbound(result.outbound_id)
    recipient = OutboundRecipient.objects.get(message_id=result.outbound_id)
    assert recipient.state == "deferred" and recipient.attempts == 1
    assert recipient.last_reply == "451 4.3.0 try again later"
    assert recipient.last_host == f"[127.0.0.1]:{far.port}"
    assert recipient.next_attempt >= before + timedelta(seconds=300)
    # Not due yet: a pass now does nothing.
    deliver_outbound(result.outbound_id)
    assert OutboundRecipient.objects.get(pk=recipient.pk).attempts == 1
    make_due(result.outbound_id)
    deliver_outbound(result.outbound_id)
    recipient.refresh_from_db()
    assert recipient.state == "deferred" and recipient.attempts == 2
    assert recipient.next_attempt >= timezone.now() + timedelta(seconds=590)  # growing backoff
    make_due(result.outbound_id)
    deliver_outbound(result.outbound_id)
    recipient.refresh_from_db()
    assert recipient.state == "delivered" and recipient.attempts == 3
    assert len(far.received) == 1
    history = list(DeliveryAttempt.objects.filter(recipient=recipient))
    assert [(h.code, h.outcome) for h in history] == [
        (451, "deferred"), (451, "deferred"), (250, "delivered")]


def test_a_550_for_one_of_two_recipients_delivers_one_and_puts_a_dsn_in_the_senders_inbox(
    mailbox, remote_mx
):
    far = remote_mx("remote.test", behaviour=Behaviour(
        rcpt_replies={"nobody@remote.test": ["550 5.1.1 <nobody@remote.test>: no such user"]}))
    raw = make_message(sender=SENDER, subject="Quarterly figures")
    result = enqueue_outbound(raw, SENDER, ["nobody@remote.test", "ok@remote.test"])
    report = deliver_outbound(result.outbound_id)
    assert (report.delivered, report.bounced) == (1, 1)
    assert [r.rcpt_tos for r in far.received] == [["ok@remote.test"]]
    assert states(result.outbound_id) == {"nobody@remote.test": "bounced",
                                          "ok@remote.test": "delivered"}
    [dsn_row] = inbox_messages(mailbox)
    assert dsn_row.subject == "Undelivered Mail Returned to Sender"
    dsn = email.message_from_bytes(
        Blob.objects.get(pk=dsn_row.blob_id).data, policy=email.policy.default)
    assert dsn.get_content_type() == "multipart/report"
    assert dsn.get_param("report-type") == "delivery-status"
    assert dsn["Auto-Submitted"] == "auto-replied"
    human, status, headers = dsn.get_payload()
    assert "nobody@remote.test" in human.get_content()
    assert status.get_content_type() == "message/delivery-status"
    per_message, per_recipient = status.get_payload()
    assert per_message["Reporting-MTA"] == "dns; mail.example.test"
    assert per_recipient["Final-Recipient"] == "rfc822; nobody@remote.test"
    assert per_recipient["Action"] == "failed"
    assert per_recipient["Status"] == "5.1.1"
    assert "550 5.1.1" in per_recipient["Diagnostic-Code"]
    assert headers.get_content_type() == "text/rfc822-headers"
    assert b"Subject: Quarterly figures" in headers.get_payload(decode=True)
    # The DSN came from the null sender: it never enters the queue with a sender to bounce to.
    assert not OutboundMessage.objects.exclude(pk=result.outbound_id).exists()


def test_a_dsn_for_a_remote_sender_is_queued_from_the_null_sender(db, remote_mx):
    far = remote_mx("remote.test", behaviour=Behaviour(
        rcpt_replies={"x@remote.test": ["550 5.1.1 unknown"]}))
    result = enqueue_outbound(make_message(), "alice@remote.test", ["x@remote.test"])
    deliver_outbound(result.outbound_id)
    dsn_entry = OutboundMessage.objects.exclude(pk=result.outbound_id).get()
    assert dsn_entry.mail_from == ""
    assert states(dsn_entry.pk) == {"alice@remote.test": "queued"}
    deliver_outbound(dsn_entry.pk)
    [dsn] = far.handler.messages_for("alice@remote.test")
    assert dsn.mail_from == "<>" or dsn.mail_from == ""
    assert b"multipart/report" in dsn.data


def test_a_message_from_the_null_sender_is_never_bounced(db, remote_mx):
    remote_mx("remote.test", behaviour=Behaviour(
        rcpt_replies={"x@remote.test": ["550 5.1.1 unknown"]}))
    result = enqueue_outbound(make_message(), "", ["x@remote.test"])
    deliver_outbound(result.outbound_id)
    assert states(result.outbound_id) == {"x@remote.test": "bounced"}
    assert OutboundMessage.objects.count() == 1


def test_a_far_side_that_hangs_after_the_data_times_out_and_is_deferred(
    mailbox, remote_mx, settings
):
    settings.CORREIO_RELAY_DATA_TERM_TIMEOUT = 1
    far = remote_mx("remote.test", behaviour=Behaviour(hang_data=30))
    result = enqueue_outbound(make_message(), SENDER, ["x@remote.test"])
    deliver_outbound(result.outbound_id)
    recipient = OutboundRecipient.objects.get(message_id=result.outbound_id)
    assert recipient.state == "deferred"
    assert "end of data" in recipient.last_reply and "timed out" in recipient.last_reply
    assert far.received == []


def test_a_server_that_never_greets_times_out_and_is_deferred(mailbox, settings):
    settings.CORREIO_RELAY_COMMAND_TIMEOUT = 1
    with serve_in_thread(start_silent) as silent:
        settings.CORREIO_MX_OVERRIDES = {"remote.test": [("127.0.0.1", silent.port)]}
        reset_transport()
        result = enqueue_outbound(make_message(), SENDER, ["x@remote.test"])
        deliver_outbound(result.outbound_id)
    recipient = OutboundRecipient.objects.get(message_id=result.outbound_id)
    assert recipient.state == "deferred"
    assert "greeting" in recipient.last_reply


def test_a_refused_connection_is_deferred_and_retried(mailbox, settings):
    settings.CORREIO_MX_OVERRIDES = {"remote.test": [("127.0.0.1", 9)]}
    reset_transport()
    result = enqueue_outbound(make_message(), SENDER, ["x@remote.test"])
    deliver_outbound(result.outbound_id)
    recipient = OutboundRecipient.objects.get(message_id=result.outbound_id)
    assert recipient.state == "deferred" and "connect" in recipient.last_reply


def test_a_recipient_still_deferred_at_expiry_is_expired_with_a_dsn(mailbox, remote_mx):
    remote_mx("remote.test", behaviour=Behaviour(data_replies=["451 4.4.1 later"] * 5))
    result = enqueue_outbound(make_message(subject="Old news"), SENDER,
                                       ["x@remote.test"])
    OutboundMessage.objects.filter(pk=result.outbound_id).update(
        expires=timezone.now() - timedelta(seconds=1))
    deliver_outbound(result.outbound_id)
    assert states(result.outbound_id) == {"x@remote.test": "expired"}
    [dsn_row] = inbox_messages(mailbox)
    dsn = email.message_from_bytes(Blob.objects.get(pk=dsn_row.blob_id).data,
                                   policy=email.policy.default)
    _, per_recipient = dsn.get_payload()[1].get_payload()
    assert per_recipient["Action"] == "failed"
    assert per_recipient["Status"] == "4.4.7"
    assert "451 4.4.1 later" in per_recipient["Diagnostic-Code"]
    assert OutboundMessage.objects.get(pk=result.outbound_id).finished


def test_the_last_retry_is_scheduled_no_later_than_the_expiry(mailbox, remote_mx):
    remote_mx("remote.test", behaviour=Behaviour(data_replies=["451 4.4.1 later"]))
    result = enqueue_outbound(make_message(), SENDER, ["x@remote.test"])
    expires = timezone.now() + timedelta(seconds=60)
    OutboundMessage.objects.filter(pk=result.outbound_id).update(expires=expires)
    deliver_outbound(result.outbound_id)
    recipient = OutboundRecipient.objects.get(message_id=result.outbound_id)
    assert recipient.state == "deferred" and recipient.next_attempt == expires


def test_a_delayed_notice_goes_out_once_after_four_hours_deferred(mailbox, remote_mx):
    remote_mx("remote.test", behaviour=Behaviour(data_replies=["421 4.4.2 busy"] * 5))
    result = enqueue_outbound(make_message(subject="Slow"), SENDER, ["x@remote.test"])
    deliver_outbound(result.outbound_id)
    assert inbox_messages(mailbox) == []  # too early for a notice
    OutboundMessage.objects.filter(pk=result.outbound_id).update(
        created=timezone.now() - timedelta(hours=4, minutes=1))
    for _ in range(2):
        make_due(result.outbound_id)
        deliver_outbound(result.outbound_id)
    [notice] = inbox_messages(mailbox)
    assert notice.subject == "Delayed Mail (still being retried)"
    dsn = email.message_from_bytes(Blob.objects.get(pk=notice.blob_id).data,
                                   policy=email.policy.default)
    _, per_recipient = dsn.get_payload()[1].get_payload()
    assert per_recipient["Action"] == "delayed"
    assert per_recipient["Will-Retry-Until"]
    assert states(result.outbound_id) == {"x@remote.test": "deferred"}


def test_a_locked_message_is_left_to_the_worker_that_holds_it(mailbox, remote_mx):
    far = remote_mx("remote.test")
    result = enqueue_outbound(make_message(), SENDER, ["x@remote.test"])
    assert _claim(result.outbound_id, "worker-one", timezone.now())
    assert deliver_outbound(result.outbound_id, token="worker-two").claimed is False
    assert far.received == []
    # The same task delivered again (its worker died) takes its own lock back.
    assert deliver_outbound(result.outbound_id, token="worker-one").delivered == 1
    assert len(far.received) == 1
    assert OutboundMessage.objects.get(pk=result.outbound_id).lock_token == ""


def test_an_expired_lock_is_taken_over(mailbox, remote_mx):
    far = remote_mx("remote.test")
    result = enqueue_outbound(make_message(), SENDER, ["x@remote.test"])
    OutboundMessage.objects.filter(pk=result.outbound_id).update(
        lock_token="dead-worker", locked_until=timezone.now() - timedelta(seconds=1))
    assert deliver_outbound(result.outbound_id, token="new").delivered == 1
    assert len(far.received) == 1
