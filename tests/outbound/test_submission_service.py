"""Submission rules in the service layer: a user sends only as their own addresses (envelope and
From header), to anyone; missing Date and Message-ID are added."""

import pytest

from mailcore.exceptions import InvalidAddress, SenderNotOwned, UnknownRecipient
from mailcore.models import Alias, OutboundMessage, OutboundRecipient
from mailcore.services import submission
from mailcore.services.outbound.queue import EnqueueResult
from tests.factories import make_message
from tests.outbound.helpers import SENDER


def test_a_user_may_send_as_the_mailbox_and_as_an_alias_of_their_own(mailbox):
    Alias.objects.create(domain=mailbox.domain, local_part="me", destinations=mailbox.address)
    for sender in ("demo@example.test", "DEMO@example.test", "me@example.test"):
        raw = make_message(sender=f"Demo <{sender}>")
        result = submission.submit_message(mailbox, sender, ["x@remote.test"], raw)
        entry = OutboundMessage.objects.get(pk=result.outbound_id)
        assert entry.mail_from == sender.lower() and entry.mailbox == mailbox


@pytest.mark.parametrize("sender", ["other@example.test", "demo@remote.test", "shared@example.test"])
def test_a_user_may_not_send_as_someone_else(mailbox, make_mailbox, sender):
    make_mailbox("other@example.test")
    Alias.objects.create(domain=mailbox.domain, local_part="shared",
                         destinations="demo@example.test, other@example.test")
    with pytest.raises(SenderNotOwned):
        submission.submit_message(mailbox, sender, ["x@remote.test"], make_message(sender=sender))
    with pytest.raises(SenderNotOwned):
        submission.submit_message(mailbox, "demo@example.test", ["x@remote.test"],
                                  make_message(sender=sender))
    assert not OutboundMessage.objects.exists()


def test_the_null_sender_and_a_missing_from_header_are_refused(mailbox):
    with pytest.raises(SenderNotOwned):
        submission.check_sender(mailbox, "")
    with pytest.raises(InvalidAddress):
        submission.check_sender(mailbox, "demo@example.test\r\nRCPT TO:<x@y.test>")
    raw = b"To: x@remote.test\r\nSubject: no from\r\n\r\nhi\r\n"
    with pytest.raises(SenderNotOwned):
        submission.submit_message(mailbox, "demo@example.test", ["x@remote.test"], raw)


def test_recipients_may_be_anywhere_but_local_ones_must_exist(mailbox):
    assert submission.check_submission_recipient("Someone@Far.Example") == "someone@far.example"
    assert submission.check_submission_recipient("demo@example.test") == "demo@example.test"
    with pytest.raises(UnknownRecipient):
        submission.check_submission_recipient("nobody@example.test")


def test_missing_date_and_message_id_are_added(mailbox):
    raw = b"From: demo@example.test\r\nTo: x@remote.test\r\nSubject: bare\r\n\r\nhi\r\n"
    result = submission.submit_message(mailbox, "demo@example.test", ["x@remote.test"], raw)
    entry = OutboundMessage.objects.get(pk=result.outbound_id)
    stored = bytes(entry.blob.data)
    assert stored.startswith(b"Date: ") and b"\r\nMessage-ID: <" in stored
    assert stored.endswith(raw) and entry.message_id.endswith("@mail.example.test>")
    full = make_message(sender="demo@example.test")
    result = submission.submit_message(mailbox, "demo@example.test", ["x@remote.test"], full)
    assert bytes(OutboundMessage.objects.get(pk=result.outbound_id).blob.data) == full


def test_grouped_submissions_fail_one_by_one_and_queue_the_rest(mailbox, make_mailbox):
    raw = make_message(sender=SENDER)
    items = [
        submission.Submission(mailbox, SENDER, ("a@remote.test",), raw),
        submission.Submission(mailbox, "someone@example.test", ("b@remote.test",), raw),
        submission.Submission(mailbox, SENDER, ("nobody@example.test", "c@remote.test"), raw),
        submission.Submission(mailbox, SENDER, ("d@remote.test",), raw),
    ]
    first, not_owned, unknown, last = submission.submit_many(items)
    assert isinstance(not_owned, SenderNotOwned) and isinstance(unknown, UnknownRecipient)
    assert isinstance(first, EnqueueResult) and isinstance(last, EnqueueResult)
    queued = OutboundRecipient.objects.values_list("address", flat=True)
    assert sorted(queued) == ["a@remote.test", "d@remote.test"]
