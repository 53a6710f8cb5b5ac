"""Small helpers the outbound tests share: the sender of their mailbox fixture, and reading
back what the queue recorded."""

from django.utils import timezone

from mailcore.models import Message, OutboundRecipient

SENDER = "demo@example.test"


def inbox_messages(mailbox):
    return list(Message.objects.filter(mailbox=mailbox, folder__role="inbox").order_by("uid"))


def states(outbound_id):
    return dict(
        OutboundRecipient.objects.filter(message_id=outbound_id).values_list("address", "state")
    )


def make_due(outbound_id):
    OutboundRecipient.objects.filter(message_id=outbound_id).update(next_attempt=timezone.now())
