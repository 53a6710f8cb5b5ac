"""Looking after the outbound queue: the periodic sweep and cleanup (Celery beat), and the
operator's actions from the admin ("retry now", "bounce now", delete).

The sweep re-dispatches due entries from the database, so losing the broker or every worker
loses nothing (ARCHITECTURE.md, "No loss")."""

from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from mailcore import blobstore
from mailcore.mime.dsn import DsnRecipient
from mailcore.models import DeliveryAttempt, OutboundMessage, OutboundRecipient
from mailcore.models.outbound import PENDING_STATES, RecipientState
from mailcore.services.dispatch import dispatch
from mailcore.services.outbound.queue import delete_outbound
from mailcore.services.outbound.relay import send_dsn


def due_message_ids(limit: int = 1000) -> list[int]:
    """Messages with recipients due now, not held and not locked by a live worker.

    A recipient never tried yet is left to the task published when it was queued, until it has
    waited a sweep interval (so the sweep does not duplicate every fresh task)."""
    now = timezone.now()
    grace = timedelta(
        seconds=settings.CORREIO_OUTBOUND_SWEEP_SECONDS if settings.CORREIO_OUTBOUND_DISPATCH
        else 0
    )
    return list(
        OutboundRecipient.objects.filter(state__in=PENDING_STATES)
        .filter(Q(attempts__gt=0, next_attempt__lte=now) | Q(next_attempt__lte=now - grace))
        .filter(Q(message__hold_until__isnull=True) | Q(message__hold_until__lte=now))
        .filter(Q(message__locked_until__isnull=True) | Q(message__locked_until__lt=now))
        .order_by("message_id")
        .values_list("message_id", flat=True)
        .distinct()[:limit]
    )


def sweep_outbound(limit: int = 1000) -> int:
    """Dispatch a delivery task for every due message (Celery beat runs this)."""
    ids = due_message_ids(limit)
    for message_id in ids:
        dispatch(message_id)
    return len(ids)


def cleanup_outbound() -> int:
    """Forget finished queue entries older than ``CORREIO_OUTBOUND_KEEP_DAYS``, and their
    stored bytes when nothing else holds them."""
    cutoff = timezone.now() - timedelta(days=settings.CORREIO_OUTBOUND_KEEP_DAYS)
    old = OutboundMessage.objects.filter(finished=True, created__lt=cutoff)
    return delete_outbound(list(old.values_list("pk", flat=True)))


def retry_now(message_ids: Sequence[int]) -> int:
    """Make every waiting recipient of these messages due now, release any hold, dispatch."""
    now = timezone.now()
    with transaction.atomic():
        count = OutboundRecipient.objects.filter(
            message_id__in=message_ids, state__in=PENDING_STATES
        ).update(next_attempt=now)
        OutboundMessage.objects.filter(pk__in=message_ids).update(hold_until=None)
        if settings.CORREIO_OUTBOUND_DISPATCH:
            for message_id in message_ids:
                transaction.on_commit(lambda m=message_id: dispatch(m))
    return count


def bounce_now(message_ids: Sequence[int], reason: str = "bounced by the administrator") -> int:
    """Give up on every waiting recipient of these messages now, with a DSN to each sender."""
    now = timezone.now()
    count = 0
    for message in OutboundMessage.objects.filter(pk__in=message_ids):
        with transaction.atomic():
            waiting = list(message.recipients.select_for_update().filter(
                state__in=PENDING_STATES))
            if not waiting:
                continue
            entries = []
            for recipient in waiting:
                reply = f"5.0.0 {reason}"
                OutboundRecipient.objects.filter(pk=recipient.pk).update(
                    state=RecipientState.BOUNCED, last_reply=reply, last_attempt=now
                )
                DeliveryAttempt.objects.create(recipient=recipient, at=now, host="admin",
                                               reply=reply, outcome=RecipientState.BOUNCED)
                entries.append(DsnRecipient(recipient.address, "failed", "5.0.0",
                                            diagnostic=recipient.last_reply or reply,
                                            last_attempt=recipient.last_attempt))
            send_dsn(message, blobstore.load_blob(message.blob_id), entries)
            OutboundMessage.objects.filter(pk=message.pk).update(finished=True)
            count += len(waiting)
    return count

