"""Real Celery workers in subprocesses on a real broker: the filesystem transport locally, Redis
when REDIS_URL is set (as in CI), each run on a queue of its own; and a private redis-server
that the test kills and restarts. The crash scenarios of the issue: a worker killed with SIGKILL
mid-delivery and Redis restarted while mail is queued; every recipient is delivered exactly
once in the end."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from kombu import Connection

from mailcore import tasks
from mailcore.models import OutboundRecipient
from mailcore.services.outbound.queue import enqueue_outbound
from tests.factories import make_message
from tests.outbound.sink import Behaviour, RecordingHandler, serve_in_thread, start_sink

ROOT = Path(__file__).resolve().parents[2]
SENDER = "demo@example.test"
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def database_url() -> str:
    """The test database, for the worker processes."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry.name))
    return found


class Broker:
    def __init__(self, url: str, folder: Path | None = None):
        self.url = url
        self.folder = folder

    def env(self) -> dict:
        return {"CELERY_BROKER_URL": self.url, "REDIS_URL": self.url if self.url.startswith(
            "redis") else ""}

    def connection(self) -> Connection:
        if self.folder is None:
            return Connection(self.url)
        queue = str(self.folder / "broker" / "queue")
        for sub in ("queue", "processed"):
            (self.folder / "broker" / sub).mkdir(parents=True, exist_ok=True)
        return Connection("filesystem://", transport_options={
            "data_folder_in": queue, "data_folder_out": queue,
            "processed_folder": str(self.folder / "broker" / "processed"),
            "control_folder": str(self.folder / "broker" / "control"),
            "store_processed": False})


class Cluster:
    """Worker (and beat) subprocesses sharing the test database, a broker and a queue."""

    def __init__(self, tmp: Path, broker: Broker, routes: dict[str, int], **extra: str):
        self.tmp = tmp
        self.broker = broker
        self.queue = f"correio-test-{uuid.uuid4().hex[:10]}"
        self.routes = ";".join(f"{d}=127.0.0.1:{p}" for d, p in routes.items())
        self.extra = extra
        self.procs: list[subprocess.Popen] = []

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("CORREIO_", "CELERY_", "DATABASE_URL", "REDIS_URL"))}
        env.update(self.broker.env())
        env.update({
            "DATABASE_URL": database_url(),
            "CORREIO_VAR_DIR": str(self.tmp),
            "CORREIO_CELERY_QUEUE": self.queue,
            "CORREIO_MX_OVERRIDES": self.routes,
            "CORREIO_OUTBOUND_SWEEP_SECONDS": "1",
            "CORREIO_LOG_LEVEL": "INFO",
            "PYTHONPATH": str(ROOT),
        })
        env.update(self.extra)
        return env

    def start(self, what: str) -> subprocess.Popen:
        if what == "worker":
            args = ["worker", "--loglevel=INFO", "--concurrency=1", "-Q", self.queue,
                    "-n", f"{self.queue}-{len(self.procs)}@%h", "--without-mingle",
                    "--without-gossip"]
        else:
            args = ["beat", "--loglevel=INFO", "-s", str(self.tmp / "beat-schedule")]
        log = open(self.tmp / f"{what}-{len(self.procs)}.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "webmail", *args],
            cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def publish(self, message_id: int) -> None:
        with self.broker.connection() as conn:
            tasks.deliver_outbound.apply_async((message_id,), connection=conn, queue=self.queue)

    def kill(self, proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill(proc)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.tmp.glob("*.log"))


def wait_until(condition, timeout: float, cluster: Cluster, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{cluster.logs()}")


def all_delivered(ids) -> bool:
    return set(OutboundRecipient.objects.filter(message_id__in=ids).values_list(
        "state", flat=True)) == {"delivered"}


def delivered_counts(handler: RecordingHandler) -> Counter:
    return Counter(rcpt for r in handler.received for rcpt in r.rcpt_tos)


@pytest.fixture
def broker(tmp_path):
    """The run's broker: Redis when REDIS_URL is set (CI), else the filesystem transport."""
    if settings.REDIS_URL:
        return Broker(settings.REDIS_URL)
    return Broker("filesystem://", folder=tmp_path)


@pytest.fixture
def sink():
    handler = RecordingHandler(Behaviour(hang_data=60, hang_data_times=1))
    with serve_in_thread(lambda: start_sink(handler)) as running:
        yield handler, running.port


def test_a_worker_process_killed_mid_delivery_is_replaced_and_delivers_exactly_once(
    mailbox, tmp_path, broker, sink
):
    handler, port = sink
    cluster = Cluster(tmp_path, broker, {"remote.test": port, "other.test": port})
    result = enqueue_outbound(make_message(), SENDER, ["a@remote.test", "b@other.test"])
    try:
        worker = cluster.start("worker")
        cluster.publish(result.outbound_id)
        # The first transaction hangs after the data: kill the pool process delivering it.
        wait_until(lambda: handler.transactions >= 1, 60, cluster, "the first delivery")
        pool = children(worker.pid)
        assert pool, cluster.logs()
        for pid in pool:
            os.kill(pid, signal.SIGKILL)
        # Late ack + reject on worker loss: the task comes back, with its id, to a new process.
        wait_until(lambda: all_delivered([result.outbound_id]), 60, cluster, "redelivery")
    finally:
        cluster.stop()
    assert delivered_counts(handler) == {"a@remote.test": 1, "b@other.test": 1}
    assert handler.transactions == 3  # the killed one, then one per destination
    assert "WorkerLostError" in cluster.logs() or "SIGKILL" in cluster.logs()


def test_a_whole_worker_killed_mid_delivery_is_recovered_by_the_sweep_exactly_once(
    mailbox, tmp_path, broker, sink
):
    handler, port = sink
    # A short lock lease (and attempt deadline below it), so the sweep may take over soon.
    cluster = Cluster(tmp_path, broker, {"remote.test": port},
                      CORREIO_OUTBOUND_LOCK_SECONDS="6", CORREIO_RELAY_ATTEMPT_DEADLINE="5",
                      CORREIO_RELAY_DATA_TERM_TIMEOUT="5")
    result = enqueue_outbound(make_message(), SENDER, ["a@remote.test"])
    try:
        first = cluster.start("worker")
        cluster.publish(result.outbound_id)
        wait_until(lambda: handler.transactions >= 1, 60, cluster, "the first delivery")
        cluster.kill(first)  # the main process and its pool, as in a crash or OOM kill
        cluster.start("worker")
        cluster.start("beat")
        wait_until(lambda: all_delivered([result.outbound_id]), 90, cluster, "the sweep")
        time.sleep(3)  # more sweeps: nothing is sent twice
    finally:
        cluster.stop()
    assert delivered_counts(handler) == {"a@remote.test": 1}
    recipient = OutboundRecipient.objects.get(message_id=result.outbound_id)
    assert recipient.attempts == 1  # the killed attempt recorded nothing


class RedisServer:
    def __init__(self, tmp: Path):
        self.port = free_port()
        self.tmp = tmp
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # No persistence: a restart loses every queued task, the worst case.
        self.proc = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


def test_redis_restarted_while_mail_is_queued_loses_nothing_and_duplicates_nothing(
    mailbox, tmp_path, own_redis
):
    handler = RecordingHandler()
    with serve_in_thread(lambda: start_sink(handler)) as running:
        cluster = Cluster(tmp_path, Broker(own_redis.url), {"remote.test": running.port})
        ids = []

        def send(n: int) -> None:
            result = enqueue_outbound(make_message(), SENDER, [f"r{n}@remote.test"])
            ids.append(result.outbound_id)

        try:
            # Tasks published into Redis, then Redis dies and comes back empty.
            for n in range(3):
                send(n)
                cluster.publish(ids[-1])
            own_redis.kill()
            own_redis.start()
            cluster.start("worker")
            cluster.start("beat")
            wait_until(lambda: all_delivered(ids), 90, cluster, "the lost tasks, swept")
            # Redis dies under a running worker; mail queued meanwhile waits in the database.
            own_redis.kill()
            for n in range(3, 6):
                send(n)  # no task reaches the broker: the row alone is the truth
            own_redis.start()
            for n in range(6, 8):
                send(n)
                cluster.publish(ids[-1])
            wait_until(lambda: all_delivered(ids), 120, cluster, "delivery after the restart")
            time.sleep(3)
        finally:
            cluster.stop()
    assert delivered_counts(handler) == {f"r{n}@remote.test": 1 for n in range(8)}


def test_queueing_with_the_broker_down_neither_fails_nor_hangs(tmp_path):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    code = (
        "import time, django; django.setup()\n"
        "from mailcore.services.dispatch import dispatch\n"
        "start = time.monotonic(); dispatch(1); print(round(time.monotonic() - start, 2))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CORREIO_", "CELERY_"))}
    env.update({"REDIS_URL": dead, "CORREIO_VAR_DIR": str(tmp_path), "PYTHONPATH": str(ROOT),
                "DJANGO_SETTINGS_MODULE": "webmail.settings"})
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.strip()) < 10
    assert "the sweep will" in done.stderr
