"""Change events: after a change commits, the service layer says which mailbox and folder changed
and its new mod-sequence. IMAP IDLE and the webmail's live list listen.

With ``REDIS_URL`` set the channel is Redis pub/sub, so every process sees every change; without
it the channel is in-process (one process runs all listeners in embedded mode)."""

import json
import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import transaction

logger = logging.getLogger("correio.events")


def channel_prefix() -> str:
    """Channels are named after the database, so that several Correio installations (or test
    runs) can share one Redis without hearing each other's changes."""
    from django.db import connection

    return f"correio:{connection.settings_dict['NAME']}:mailbox:"


@dataclass(frozen=True)
class ChangeEvent:
    mailbox_id: int
    folder_id: int | None
    modseq: int
    kind: str  # "new", "flags", "expunge", "folders"


Callback = Callable[[ChangeEvent], None]

_lock = threading.Lock()
_subscribers: dict[int, set[Callback]] = defaultdict(set)
_redis_thread: threading.Thread | None = None
_redis_client = None


def _dispatch(event: ChangeEvent) -> None:
    with _lock:
        callbacks = list(_subscribers.get(event.mailbox_id, ()))
    for callback in callbacks:
        try:
            callback(event)
        except Exception:  # a broken subscriber must not break the publisher
            logger.exception("event subscriber failed")


def _redis():
    global _redis_client
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(settings.REDIS_URL)
    return _redis_client


def publish(event: ChangeEvent) -> None:
    """Send an event now. Services call :func:`publish_on_commit` instead."""
    if settings.REDIS_URL:
        try:
            _redis().publish(f"{channel_prefix()}{event.mailbox_id}", json.dumps(asdict(event)))
            return
        except Exception:
            # Losing Redis loses no mail; listeners also poll. Fall back to local delivery.
            logger.warning("could not publish change event to Redis", exc_info=True)
    _dispatch(event)


def publish_on_commit(event: ChangeEvent) -> None:
    transaction.on_commit(lambda: publish(event))


def _redis_listener(prefix: str) -> None:
    import time

    while True:
        try:
            pubsub = _redis().pubsub(ignore_subscribe_messages=True)
            pubsub.psubscribe(f"{prefix}*")
            for message in pubsub.listen():
                if message.get("type") != "pmessage":
                    continue
                try:
                    event = ChangeEvent(**json.loads(message["data"]))
                except (TypeError, ValueError):
                    continue
                _dispatch(event)
        except Exception:
            logger.warning("Redis event listener lost its connection; retrying", exc_info=True)
            time.sleep(1)


def subscribe(mailbox_id: int, callback: Callback) -> Callable[[], None]:
    """Call ``callback(event)`` for every change of the mailbox, from another thread.

    Returns a function that unsubscribes."""
    global _redis_thread
    with _lock:
        _subscribers[mailbox_id].add(callback)
        if settings.REDIS_URL and _redis_thread is None:
            _redis_thread = threading.Thread(
                target=_redis_listener, args=(channel_prefix(),), name="correio-events",
                daemon=True,
            )
            _redis_thread.start()

    def unsubscribe() -> None:
        with _lock:
            callbacks = _subscribers.get(mailbox_id)
            if callbacks is not None:
                callbacks.discard(callback)
                if not callbacks:
                    del _subscribers[mailbox_id]

    return unsubscribe
