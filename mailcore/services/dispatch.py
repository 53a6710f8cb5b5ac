"""Publishing Celery tasks: the one place that hands work to the broker.

Tasks are published by name (``send_task``), so the service layer never imports
:mod:`mailcore.tasks` (which imports the services: that would be a cycle) and a process that
only queues mail (the listeners, the web) need not load the task module at all. The names are
the contract between publisher and worker; :mod:`mailcore.tasks` registers its tasks under
these same constants.

A broker failure is only logged, never raised: the database row is the truth, and the periodic
sweep (``outbound.admin.sweep_outbound``, Celery beat) dispatches due entries again, so losing
the broker loses no mail (ARCHITECTURE.md, "No loss")."""

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.utils import timezone

logger = logging.getLogger("correio.outbound")

DELIVER_OUTBOUND = "mailcore.tasks.deliver_outbound"
DELIVER_OUTBOUND_BATCH = "mailcore.tasks.deliver_outbound_batch"
SWEEP_OUTBOUND = "mailcore.tasks.sweep_outbound"
CLEANUP_OUTBOUND = "mailcore.tasks.cleanup_outbound"
LEARN_SPAM = "mailcore.tasks.learn_spam"
PURGE_LOGIN_RECORDS = "mailcore.tasks.purge_login_records"
PURGE_EXPUNGED = "mailcore.tasks.purge_expunged"

# A publish retries the broker connection twice, then gives up (and logs): a dead broker must
# not hold a web request or an SMTP reply for long.
_RETRY_POLICY = {"max_retries": 2}
# A hold ending sooner than this gets a delivery task timed for its end; a longer one is left
# to the sweep (a broker holding an ETA task for days is fragile, e.g. Redis's visibility
# timeout hands it out again every hour).
TIMED_DISPATCH_WITHIN = timedelta(minutes=15)


def publish(task_name: str, args: tuple, *, countdown: float | None = None,
            what: str = "") -> bool:
    """Publish one task by name; False (and a warning naming ``what``) if the broker fails."""
    try:
        current_app.send_task(task_name, args=args, countdown=countdown, retry=True,
                              retry_policy=_RETRY_POLICY)
    except Exception:
        logger.warning("could not publish %s; the sweep will", what or task_name, exc_info=True)
        return False
    return True


def dispatch(message_id: int) -> None:
    """Publish the delivery of one queued outbound message."""
    publish(DELIVER_OUTBOUND, (message_id,), what=f"delivery of outbound {message_id}")


def dispatch_many(message_ids: Sequence[int]) -> None:
    """Publish the delivery of several messages, ``CORREIO_OUTBOUND_BATCH`` ids a task (a
    submission group commit, or a pass's leftovers)."""
    ids = list(message_ids)
    size = max(settings.CORREIO_OUTBOUND_BATCH, 1)
    for start in range(0, len(ids), size):
        chunk = ids[start:start + size]
        publish(DELIVER_OUTBOUND_BATCH, (chunk,), what=f"delivery of outbound {chunk}")


def dispatch_at(message_id: int, when: datetime) -> None:
    """Publish the delivery of a held message for the end of its hold, when that is near
    (``TIMED_DISPATCH_WITHIN``); a later one is left to the sweep."""
    delay = when - timezone.now()
    if delay > TIMED_DISPATCH_WITHIN:
        return
    if delay <= timedelta(0):
        dispatch(message_id)
        return
    publish(DELIVER_OUTBOUND, (message_id,), countdown=delay.total_seconds(),
            what=f"timed delivery of outbound {message_id}")


def dispatch_learning(blob_ids: list[str], spam: bool) -> None:
    """Publish rspamd's training on these stored messages (Junk / Not junk, issue 14).

    Through the task registry rather than ``send_task`` so that eager mode (tests, a worker-less
    run) executes it in place; best effort: the move it follows is already committed."""
    try:
        # Registers the project's tasks (autodiscovery) without this module importing them.
        current_app.loader.import_default_modules()
        current_app.tasks[LEARN_SPAM].apply_async((blob_ids, spam), retry=True,
                                                  retry_policy=_RETRY_POLICY)
    except Exception:
        logger.warning("could not publish spam training for %d messages", len(blob_ids),
                       exc_info=True)
