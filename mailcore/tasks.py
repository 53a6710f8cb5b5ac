"""Celery tasks: thin wrappers that take ids and call one service each (STYLE.md).

Delivery is at-least-once (late acks, requeue on a lost worker, see webmail/settings.py) and
idempotent: the queue rows are the truth, a pass takes its messages' locks with a conditional
update, and recipients already delivered are never tried again."""

from celery import shared_task

from mailcore import metrics
from mailcore.services import outbound


def _summary(report: outbound.RunReport) -> dict:
    metrics.count_relay(report.delivered, report.deferred, report.bounced, report.expired)
    if report.more:
        outbound.dispatch_many(report.leftover)
    return {"claimed": report.claimed, "delivered": report.delivered,
            "deferred": report.deferred, "bounced": report.bounced, "expired": report.expired}


@shared_task(name="mailcore.tasks.deliver_outbound", bind=True)
def deliver_outbound(self, message_id: int) -> dict:
    # The task id is the lock token: a task redelivered after its worker died takes back the
    # locks its first run held instead of waiting for the lease to run out.
    token = getattr(self.request, "id", None)
    return _summary(outbound.deliver_outbound(message_id, token=token))


@shared_task(name="mailcore.tasks.deliver_outbound_batch", bind=True)
def deliver_outbound_batch(self, message_ids: list[int]) -> dict:
    """Several messages queued together (a submission group commit), in one pass."""
    token = getattr(self.request, "id", None)
    return _summary(outbound.deliver_batch(message_ids, token=token))


@shared_task(name="mailcore.tasks.sweep_outbound")
def sweep_outbound() -> int:
    return outbound.sweep_outbound()


@shared_task(name="mailcore.tasks.cleanup_outbound")
def cleanup_outbound() -> int:
    return outbound.cleanup_outbound()
