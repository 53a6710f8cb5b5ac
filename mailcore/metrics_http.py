"""Serving the metrics of ``mailcore/metrics.py``: the HTTP listener of the mail and worker
processes (``CORREIO_METRICS_ADDR``), the queue collector, the event-loop lag probe and the
multiprocess set-up for gunicorn and Celery's prefork pool.

The listener answers ``GET /metrics`` (and ``/``) in the Prometheus text format. With
``CORREIO_METRICS_TOKEN`` set it wants ``Authorization: Bearer <token>``; without one, bind it to
loopback (the default addresses are). Every connection has a 5-second budget and at most eight
are served at once, so a client that never finishes its request holds nothing for long.
"""

import hmac
import logging
import os
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

logger = logging.getLogger("correio.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
MAX_SCRAPES = 8
SCRAPE_TIMEOUT = 5.0


# --- Multiprocess mode ---------------------------------------------------------------------


def prepare_multiprocess(folder: Path) -> Path:
    """Start ``folder`` empty (0700) and make this process and its children write their metrics
    there. Call before any metric is created (before ``mailcore.metrics`` is imported)."""
    _remove_stale(folder.parent)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o700, parents=True)
    os.environ[MULTIPROC_ENV] = str(folder)
    prometheus_values.ValueClass = prometheus_values.get_value_class()
    return folder


def _remove_stale(parent: Path) -> None:
    """Folders ``<name>-<pid>`` left by processes that were killed before cleaning up."""
    if not parent.is_dir():
        return
    for entry in parent.iterdir():
        pid = entry.name.rpartition("-")[2]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(entry, ignore_errors=True)
        except PermissionError:
            pass  # alive, someone else's


def child_exited(pid: int) -> None:
    """Forget a dead child's live gauges (its counters are kept)."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def registry() -> CollectorRegistry:
    """What a scrape returns: this process's metrics (or all processes' in multiprocess mode)
    and the queue read from the database."""
    import mailcore.metrics  # noqa: F401 - defines the metrics, so a scrape always shows them

    reg = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(reg)
    else:
        from prometheus_client import REGISTRY

        for collector in list(REGISTRY._collector_to_names):  # noqa: SLF001 - no public iterator
            reg.register(collector)
    reg.register(QueueCollector())
    return reg


def render() -> bytes:
    return generate_latest(registry())


# --- The outbound queue, from the database --------------------------------------------------


class QueueCollector:
    """``correio_outbound_queue_recipients{state}`` and ``correio_outbound_queue_oldest_seconds
    {state}`` for the pending states (queued, deferred), read at scrape time."""

    def collect(self):
        from django.db import DatabaseError, connections
        from django.db.models import Count, Min
        from django.utils import timezone

        from mailcore.models import OutboundRecipient
        from mailcore.models.outbound import PENDING_STATES

        depth = GaugeMetricFamily(
            "correio_outbound_queue_recipients",
            "Outbound recipients waiting for delivery, by state (queued, deferred).",
            labels=["state"],
        )
        age = GaugeMetricFamily(
            "correio_outbound_queue_oldest_seconds",
            "Age of the oldest message with a recipient in that state (0 when none).",
            labels=["state"],
        )
        try:
            rows = {
                row["state"]: row
                for row in OutboundRecipient.objects.filter(state__in=PENDING_STATES)
                .values("state")
                .annotate(n=Count("id"), oldest=Min("message__created"))
            }
        except DatabaseError:
            logger.exception("metrics: the outbound queue could not be read")
            return
        finally:
            # Scrapes run on short-lived threads; each would otherwise keep a connection open.
            if threading.current_thread() is not threading.main_thread():
                connections.close_all()
        now = timezone.now()
        for state in PENDING_STATES:
            row = rows.get(state)
            depth.add_metric([str(state)], row["n"] if row else 0)
            oldest = row["oldest"] if row else None
            age.add_metric([str(state)], (now - oldest).total_seconds() if oldest else 0.0)
        yield depth
        yield age


# --- The HTTP listener ----------------------------------------------------------------------


def authorized(header: str | None, token: str) -> bool:
    """``Authorization: Bearer <token>`` compared in constant time; True when no token is set."""
    if not token:
        return True
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                               token.encode())


class _Handler(BaseHTTPRequestHandler):
    server_version = "correio-metrics"
    sys_version = ""
    timeout = SCRAPE_TIMEOUT

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.split("?")[0] not in ("/", "/metrics"):
            self._reply(404, b"not found\n", "text/plain")
            return
        if not authorized(self.headers.get("Authorization"), self.server.token):
            self._reply(401, b"bearer token required\n", "text/plain")
            return
        try:
            body = render()
        except Exception:
            logger.exception("metrics: scrape failed")
            self._reply(500, b"scrape failed\n", "text/plain")
            return
        self._reply(200, body, CONTENT_TYPE_LATEST)

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", "Bearer")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # noqa: A002 - http.server's signature
        logger.debug("metrics %s: " + format, self.client_address[0], *args)


class MetricsServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], token: str = ""):
        self.token = token
        self._slots = threading.BoundedSemaphore(MAX_SCRAPES)
        super().__init__(addr, _Handler)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # over the budget: closed at once
            return
        request.settimeout(SCRAPE_TIMEOUT)
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def start_metrics_server(addr: tuple[str, int] | None, token: str = "") -> MetricsServer | None:
    """Serve metrics on ``addr`` from a daemon thread; None when ``addr`` is None (turned off)."""
    if addr is None:
        return None
    server = MetricsServer(addr, token)
    threading.Thread(target=server.serve_forever, name="correio-metrics", daemon=True).start()
    logger.info("metrics on http://%s:%s/metrics", *server.server_address[:2])
    return server


# --- Event-loop lag -------------------------------------------------------------------------


# --- Celery worker --------------------------------------------------------------------------


def connect_worker_signals() -> None:
    """Metrics for ``celery worker``: the prefork children write to a per-worker multiprocess
    folder, and the main process serves them on ``CORREIO_METRICS_ADDR``."""
    from celery import signals

    state: dict = {}

    @signals.celeryd_init.connect(weak=False)
    def _init(**kwargs) -> None:
        from django.conf import settings

        if settings.CORREIO_METRICS_ADDR is None:
            return
        state["folder"] = prepare_multiprocess(
            Path(settings.VAR_DIR) / "metrics" / f"worker-{os.getpid()}"
        )

    @signals.worker_ready.connect(weak=False)
    def _ready(**kwargs) -> None:
        from django.conf import settings

        if "folder" in state:
            state["server"] = start_metrics_server(settings.CORREIO_METRICS_ADDR,
                                                   settings.CORREIO_METRICS_TOKEN)

    @signals.worker_process_shutdown.connect(weak=False)
    def _child_gone(pid=None, **kwargs) -> None:
        child_exited(pid or os.getpid())

    @signals.worker_shutdown.connect(weak=False)
    def _stop(**kwargs) -> None:
        server = state.pop("server", None)
        if server is not None:
            server.shutdown()
        folder = state.pop("folder", None)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
