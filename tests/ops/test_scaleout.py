"""Scale-out on PostgreSQL + Redis (the CI pass; skipped without both): two ``runimap``, two
``runsmtp`` and two Celery worker processes on one database and one Redis.

- Mail delivered through one SMTP process wakes IDLE on a session of the other IMAP process
  (Redis pub/sub carries the change event between processes).
- APPENDs through both IMAP processes and deliveries through both SMTP processes, all at once,
  to one INBOX: UIDs stay unique and increasing (the folder row lock), and every APPENDUID
  reported is the UID the message has.
- Both workers relay queued mail to a remote MX on loopback: every recipient is delivered."""

import imaplib
import os
import re
import select
import smtplib
import subprocess
import sys
import threading
import time
import uuid

import pytest

from tests.factories import make_message
from tests.ops.procs import ADDRESS, PASSWORD, Deployment, free_port, wait_port
from tests.outbound.sink import RecordingHandler, serve_in_thread, start_sink

DATABASE_URL = os.environ.get("DATABASE_URL", "")
REDIS_URL = os.environ.get("REDIS_URL", "")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not (DATABASE_URL.startswith(("postgres://", "postgresql://"))
                            and REDIS_URL), reason="the PostgreSQL + Redis pass runs it"),
]


@pytest.fixture
def cluster(tmp_path):
    base = DATABASE_URL.rsplit("/", 1)[0]
    name = f"correio_scale_{uuid.uuid4().hex[:10]}"
    subprocess.run(["psql", f"{base}/postgres", "-c", f"CREATE DATABASE {name}"], check=True,
                   capture_output=True)
    site = Deployment(tmp_path / "var", DATABASE_URL=f"{base}/{name}", REDIS_URL=REDIS_URL,
                      CORREIO_CELERY_QUEUE=f"scale-{name}")
    site.setup()
    yield site
    site.stop_all()
    subprocess.run(["psql", f"{base}/postgres", "-c",
                    f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], capture_output=True)


def start_pair(site: Deployment, command: str, var: str) -> list[int]:
    ports = [free_port(), free_port()]
    procs = [site.start([sys.executable, "manage.py", command], **{var: f"127.0.0.1:{port}"})
             for port in ports]
    for port, proc in zip(ports, procs, strict=True):
        wait_port(port, proc)
    return ports


def read_until(sock, pattern: bytes, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while not re.search(pattern, seen):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            raise AssertionError(f"no {pattern!r} in {seen!r}")
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError(f"closed before {pattern!r}: {seen!r}")
        seen += chunk
    return seen


def test_two_of_each_process_share_one_store(cluster):
    imap_ports = start_pair(cluster, "runimap", "CORREIO_IMAP_ADDR")
    smtp_ports = start_pair(cluster, "runsmtp", "CORREIO_SMTP_ADDR")

    # IDLE on the second IMAP process; deliver through the first SMTP process.
    watcher = imaplib.IMAP4("127.0.0.1", imap_ports[1], timeout=30)
    watcher.login(ADDRESS, PASSWORD)
    watcher.select("INBOX")
    watcher.send(b"W1 IDLE\r\n")
    read_until(watcher.sock, rb"\+ ", 10)
    with smtplib.SMTP("127.0.0.1", smtp_ports[0], timeout=30) as client:
        client.sendmail("a@remote.test", [ADDRESS], make_message(subject="wake up"))
    read_until(watcher.sock, rb"\* 1 EXISTS", 10)
    watcher.send(b"DONE\r\n")
    read_until(watcher.sock, rb"W1 OK", 10)
    watcher.logout()

    # Concurrent APPENDs through both IMAP processes and deliveries through both SMTP ones.
    each = 25
    appended: list[list[int]] = [[], []]
    errors: list[BaseException] = []

    def append(side: int) -> None:
        try:
            client = imaplib.IMAP4("127.0.0.1", imap_ports[side], timeout=60)
            client.login(ADDRESS, PASSWORD)
            for n in range(each):
                typ, data = client.append("INBOX", None, None,
                                          make_message(subject=f"append {side} {n}"))
                uid = int(re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1))
                appended[side].append(uid)
            client.logout()
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    def deliver(side: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", smtp_ports[side], timeout=60) as client:
                for n in range(each):
                    client.sendmail("a@remote.test", [ADDRESS],
                                    make_message(subject=f"smtp {side} {n}"))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=append, args=(side,)) for side in (0, 1)]
    threads += [threading.Thread(target=deliver, args=(side,)) for side in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert errors == []
    for side in (0, 1):
        assert appended[side] == sorted(appended[side])  # increasing for each client
    assert len(set(appended[0]) | set(appended[1])) == 2 * each
    total = 1 + 4 * each
    for port in imap_ports:
        client = imaplib.IMAP4("127.0.0.1", port, timeout=30)
        client.login(ADDRESS, PASSWORD)
        client.select("INBOX", readonly=True)
        typ, data = client.uid("SEARCH", None, "ALL")
        uids = [int(u) for u in data[0].split()]
        assert uids == list(range(1, total + 1))
        typ, data = client.uid("FETCH", str(appended[0][0]),
                               "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"append 0 0" in data[0][1]
        client.logout()


def test_two_workers_relay_every_queued_message(cluster):
    handler = RecordingHandler()
    with serve_in_thread(lambda: start_sink(handler)) as sink:
        env = {"CORREIO_MX_OVERRIDES": f"remote.test=127.0.0.1:{sink.port}"}
        workers = [cluster.worker(**env), cluster.worker(**env)]
        count = 40
        script = (
            "from mailcore.services.outbound import queue as outbound; from tests.factories import make_message;"
            f" [outbound.enqueue_outbound(make_message(subject='out %d' % n), "
            f"'demo@example.test', ['r%d@remote.test' % n]) for n in range({count})]"
        )
        cluster.manage("shell", "-c", script, **env)
        deadline = time.monotonic() + 180
        while len({r for item in handler.received for r in item.rcpt_tos}) < count:
            assert time.monotonic() < deadline, len(handler.received)
            assert all(w.poll() is None for w in workers)
            time.sleep(0.5)
        got = sorted(r for item in handler.received for r in item.rcpt_tos)
        assert got == sorted(f"r{n}@remote.test" for n in range(count))
        status = cluster.manage(
            "shell", "-c",
            "from mailcore.models import OutboundRecipient as R;"
            " print(sorted(set(R.objects.values_list('state', flat=True))))").stdout
        assert b"['delivered']" in status
