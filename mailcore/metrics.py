"""Every Prometheus metric of Correio, defined in one place (README, "Metrics", lists them).

The doors and the worker count into these at a few narrow points: the connection limiter
(sessions), the command dispatch of each listener (latency), the one service adapter (service
call latency), the SMTP reply table (refusals by reason), the Celery task wrappers (relay
results), the web middleware (request latency, web logins). Queue depth and age are read from
the database at scrape time (``QueueCollector``): the database is the truth about the queue.

Processes expose them in the Prometheus text format: the web at ``/metrics``
(``webmail/views/metrics.py``), the mail listeners and the Celery worker on
``CORREIO_METRICS_ADDR`` (``mailcore/metrics_http.py``). gunicorn and Celery's prefork pool run
several processes; there prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``,
prepared by ``metrics_http.prepare_multiprocess`` before this module is imported) sums them.

Label values come from fixed sets (protocol and command names checked against the listener's
table before they are counted, exception class names, Django route names), never from client
input, so a client cannot grow the number of series.
"""

import time
from collections.abc import Awaitable, Callable
from contextlib import contextmanager
from functools import wraps
from typing import TypeVar

from prometheus_client import Counter, Gauge, Histogram

T = TypeVar("T")

# Latency buckets from 1 ms (a cached IMAP FETCH) to 30 s (a slow relay or a huge APPEND).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

# --- Mail in ---------------------------------------------------------------------------------
MESSAGES_RECEIVED = Counter(
    "correio_smtp_messages_received",
    "Messages accepted with 250 at the end of DATA, by listener (mx, submission).",
    ["listener"],
)
MESSAGES_REFUSED = Counter(
    "correio_smtp_refused",
    "SMTP commands refused by the reply table, by reason (the error's class name).",
    ["reason"],
)
DELIVERIES = Counter(
    "correio_deliveries",
    "Messages committed, by path (intake: the MX group commit; submission: queued by the "
    "submission group commit; import).",
    ["path"],
)

# --- Outbound queue --------------------------------------------------------------------------
RELAY_RESULTS = Counter(
    "correio_relay_attempts",
    "Outbound recipient attempts by result (delivered, deferred, bounced, expired).",
    ["result"],
)

# --- Sign-in ---------------------------------------------------------------------------------
LOGINS = Counter(
    "correio_logins",
    "Login attempts by door (imap, pop3, submission, webmail, admin) and result (ok, or the "
    "error's class name).",
    ["door", "result"],
)

# --- Listeners -------------------------------------------------------------------------------
SESSIONS = Gauge(
    "correio_sessions",
    "Open client connections, by listener (smtp, submission, submissions, imap, imaps, pop3, "
    "pop3s).",
    ["listener"],
    multiprocess_mode="livesum",
)
CONNECTIONS = Counter(
    "correio_connections",
    "Client connections by listener and result (accepted; refused over a connection limit; shed "
    "while the event loop was stalled; handshake_refused over the TLS handshake bounds).",
    ["listener", "result"],
)
COMMAND_SECONDS = Histogram(
    "correio_command_seconds",
    "Time to handle one protocol command, by protocol and command (IDLE and SASL excluded).",
    ["protocol", "command"],
    buckets=LATENCY_BUCKETS,
)
SERVICE_SECONDS = Histogram(
    "correio_service_call_seconds",
    "Time of one service-layer call made by a listener, queueing for a thread included.",
    ["service"],
    buckets=LATENCY_BUCKETS,
)
LOOP_LAG = Histogram(
    "correio_event_loop_lag_seconds",
    "How late the listeners' event loop runs a timer: work blocking the loop shows here.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
)

# --- Web -------------------------------------------------------------------------------------
WEB_SECONDS = Histogram(
    "correio_web_request_seconds",
    "Web request latency by route name, method and status class (2xx, 3xx, 4xx, 5xx).",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
)

# Commands whose duration is the client's choice (IDLE) or includes its round trips (SASL
# exchanges), not our work.
UNTIMED_COMMANDS = frozenset({"IDLE", "AUTHENTICATE", "AUTH"})


def reason_of(error: BaseException) -> str:
    return type(error).__name__


async def timed(protocol: str, command: str, awaitable: Awaitable[T]) -> T:
    """Await a listener's command handler, recording how long it took."""
    if command in UNTIMED_COMMANDS:
        return await awaitable
    start = time.perf_counter()
    try:
        return await awaitable
    finally:
        COMMAND_SECONDS.labels(protocol, command).observe(time.perf_counter() - start)


def smtp_hook(listener: str, command: str):
    """Decorate an aiosmtpd handler hook: time it, and count a 250 at the end of DATA as a
    message received (refusals are counted by reason in the reply table)."""

    def decorate(func: Callable[..., Awaitable[str]]) -> Callable[..., Awaitable[str]]:
        @wraps(func)
        async def wrapper(*args, **kwargs) -> str:
            reply = await timed("smtp", command, func(*args, **kwargs))
            if command == "DATA" and isinstance(reply, str) and reply.startswith("250"):
                MESSAGES_RECEIVED.labels(listener).inc()
            return reply

        return wrapper

    return decorate


@contextmanager
def login_attempt(door: str):
    """Count one login at ``door``: ``ok`` when the block finishes, else the error's name."""
    try:
        yield
    except Exception as error:
        # A listener's own error wrapping the service's (POP3) is counted by the service's.
        LOGINS.labels(door, reason_of(error.__cause__ or error)).inc()
        raise
    LOGINS.labels(door, "ok").inc()


def count_relay(delivered: int, deferred: int, bounced: int, expired: int) -> None:
    for result, count in (("delivered", delivered), ("deferred", deferred),
                          ("bounced", bounced), ("expired", expired)):
        if count:
            RELAY_RESULTS.labels(result).inc(count)
