"""Celery tasks: thin wrappers that take ids and call one service each (STYLE.md).

They are registered under the names in :mod:`mailcore.services.dispatch`, which publishes them
by name. Delivery is at-least-once (late acks, requeue on a lost worker, see
webmail/settings.py) and idempotent: the queue rows are the truth, a pass takes its messages'
locks with a conditional update, and recipients already delivered are never tried again."""

from celery import shared_task

from mailcore import metrics
from mailcore.services import dispatch, throttle, tombstones, training
from mailcore.services.outbound import admin, relay


def _summary(report: relay.RunReport) -> dict:
    metrics.count_relay(report.delivered, report.deferred, report.bounced, report.expired)
    if report.more:
        dispatch.dispatch_many(report.leftover)
    return {"claimed": report.claimed, "delivered": report.delivered,
            "deferred": report.deferred, "bounced": report.bounced, "expired": report.expired}


@shared_task(name=dispatch.DELIVER_OUTBOUND, bind=True)
def deliver_outbound(self, message_id: int) -> dict:
    # The task id is the lock token: a task redelivered after its worker died takes back the
    # locks its first run held instead of waiting for the lease to run out.
    token = getattr(self.request, "id", None)
    return _summary(relay.deliver_outbound(message_id, token=token))


@shared_task(name=dispatch.DELIVER_OUTBOUND_BATCH, bind=True)
def deliver_outbound_batch(self, message_ids: list[int]) -> dict:
    """Several messages queued together (a submission group commit), in one pass."""
    token = getattr(self.request, "id", None)
    return _summary(relay.relay_batch(message_ids, token=token))


@shared_task(name=dispatch.SWEEP_OUTBOUND)
def sweep_outbound() -> int:
    return admin.sweep_outbound()


@shared_task(name=dispatch.CLEANUP_OUTBOUND)
def cleanup_outbound() -> int:
    return admin.cleanup_outbound()


@shared_task(name=dispatch.LEARN_SPAM, bind=True, max_retries=5)
def learn_spam(self, blob_ids: list[str], spam: bool) -> int:
    """Teach rspamd from a move into or out of Junk (after that move committed)."""
    try:
        return training.learn_messages(blob_ids, spam)
    except OSError as error:  # rspamd unreachable: bounded backoff, then give up
        raise self.retry(exc=error, countdown=min(30 * 2 ** self.request.retries, 900)) from error


@shared_task(name=dispatch.PURGE_LOGIN_RECORDS)
def purge_login_records() -> int:
    return throttle.purge_login_records()


@shared_task(name=dispatch.PURGE_EXPUNGED)
def purge_expunged() -> int:
    """Keep the newest CORREIO_EXPUNGED_KEEP tombstones of expunged UIDs per folder."""
    return tombstones.purge_expunged()
