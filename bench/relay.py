"""Outbound relay benchmark: 2,000 messages through the queue and one Celery worker to a local
sink (an aiosmtpd server that answers at once), embedded (filesystem broker) and with Redis.

Prints, per broker, messages/s end to end (first message accepted → last remote 250) and the
queue latency (accepted → remote 250) p50/p99. Runs on SQLite in a temporary CORREIO_VAR_DIR;
``--redis`` uses a private redis-server on a free loopback port (Debian's), ``--redis-url``
an existing one.

    .venv/bin/python bench/relay.py [--messages 2000] [--brokers embedded,redis] [--via service]

``--via submission`` submits over SMTP AUTH on the submission port of a ``runsmtp`` process;
``--via service`` (default until the submission listener is available) calls enqueue_outbound
from 8 threads, each commit dispatching a task as the listener would.

The bar (issue 4): at least 200 messages/s end to end with Redis and one worker, median queue
latency under 1 s when the far side answers at once."""

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SENDER = "bench@example.test"
LINE = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n"


def make_message(index: int, size: int = 5000) -> bytes:
    head = (
        f"From: Bench <{SENDER}>\r\n"
        f"To: <to{index}@remote.test>\r\n"
        f"Subject: relay benchmark {index}\r\n"
        "Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n"
        f"Message-ID: <relay-{index}@example.test>\r\n"
        f"X-Bench-Index: {index}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    ).encode()
    return head + LINE * max(1, (size - len(head)) // len(LINE))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Sink:
    """The far side, in a process of its own (so it never competes for the benchmark's GIL):
    answers 250 at once and reports ``index wall-clock-time`` per message on stdout."""

    def __init__(self):
        self.arrived: dict[int, float] = {}
        self.done = threading.Event()
        self.expected = 0
        self.proc: subprocess.Popen | None = None

    def start(self) -> int:
        self.proc = subprocess.Popen([sys.executable, __file__, "--sink"], stdout=subprocess.PIPE,
                                     text=True)
        port = int(self.proc.stdout.readline())
        threading.Thread(target=self._read, daemon=True).start()
        return port

    def _read(self) -> None:
        for line in self.proc.stdout:
            index, when = line.split()
            self.arrived.setdefault(int(index), float(when))
            if len(self.arrived) >= self.expected:
                self.done.set()

    def stop(self) -> None:
        if self.proc:
            self.proc.kill()


def serve_sink() -> None:
    from aiosmtpd.smtp import SMTP

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            data = envelope.original_content
            start = data.find(b"X-Bench-Index: ") + len("X-Bench-Index: ")
            print(int(data[start:data.find(b"\r\n", start)]), time.time(), flush=True)
            return "250 2.0.0 OK"

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(Handler(), decode_data=False, enable_SMTPUTF8=True), "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(main())


def run(broker: str, count: int, redis_url: str | None, via: str) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="correio-bench-relay-"))
    redis_proc = None
    sink = Sink()
    sink.expected = count
    sink_port = sink.start()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CORREIO_", "CELERY_", "DATABASE_URL", "REDIS_URL"))}
    env.update({
        "CORREIO_VAR_DIR": str(workdir),
        "CORREIO_MX_OVERRIDES": f"remote.test=127.0.0.1:{sink_port}",
        "CORREIO_CELERY_QUEUE": f"bench-{os.getpid()}",
        "CORREIO_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    })
    if broker == "redis":
        if not redis_url:
            port = free_port()
            redis_proc = subprocess.Popen(
                [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", str(workdir)],
                stdout=subprocess.DEVNULL)
            redis_url = f"redis://127.0.0.1:{port}/0"
            time.sleep(0.5)
        env["REDIS_URL"] = redis_url
    os.environ.update(env)
    for key in list(os.environ):
        if key not in env and key.startswith(("CORREIO_", "CELERY_", "REDIS_URL")):
            del os.environ[key]
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env,
                   check=True)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "webmail", "worker", "--loglevel=" + os.environ.get("BENCH_WORKER_LOGLEVEL", "WARNING"),
         "--concurrency=2", "-Q", env["CORREIO_CELERY_QUEUE"], "--without-mingle",
         "--without-gossip", *os.environ.get("BENCH_WORKER_ARGS", "").split()],
        cwd=ROOT, env=env, start_new_session=True)
    try:
        import django

        os.environ["DJANGO_SETTINGS_MODULE"] = "webmail.settings"
        django.setup()
        from django.db import connections

        from mailcore.services import accounts, outbound

        if not accounts.is_local_domain("example.test"):
            accounts.create_domain("example.test")
            accounts.create_mailbox(SENDER, "bench-password")
        messages = [make_message(i) for i in range(count)]
        accepted: dict[int, float] = {}
        time.sleep(3)  # let the worker start
        start = time.time()

        def submit(indexes):
            for i in indexes:
                outbound.enqueue_outbound(messages[i], SENDER, [f"to{i}@remote.test"])
                accepted[i] = time.time()
            connections.close_all()

        threads = [threading.Thread(target=submit, args=(range(t, count, 8),))
                   for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        submitted = time.time()
        if not sink.done.wait(600):
            raise RuntimeError(f"only {len(sink.arrived)} of {count} arrived")
        end = max(sink.arrived.values())
        latencies = sorted(sink.arrived[i] - accepted[i] for i in range(count))
        return {
            "broker": broker,
            "messages": count,
            "accept_rate": count / (submitted - start),
            "end_to_end_rate": count / (end - start),
            "p50": statistics.median(latencies),
            "p99": latencies[int(len(latencies) * 0.99) - 1],
        }
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
        if redis_proc:
            redis_proc.kill()
        sink.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--brokers", default="embedded,redis")
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--via", choices=["service"], default="service")
    parser.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        serve_sink()
        return
    for broker in args.brokers.split(","):
        # Each broker runs in a process of its own: Django settings are read once per process.
        if len(args.brokers.split(",")) > 1:
            command = [sys.executable, __file__, "--messages", str(args.messages),
                       "--brokers", broker, "--via", args.via]
            if args.redis_url:
                command += ["--redis-url", args.redis_url]
            subprocess.run(command, check=True)
            continue
        result = run(broker, args.messages, args.redis_url, args.via)
        print(
            f"relay [{result['broker']}, via {args.via}]: {result['messages']} messages, "
            f"accepted {result['accept_rate']:.0f}/s, end to end {result['end_to_end_rate']:.0f}"
            f" messages/s, queue latency p50 {result['p50'] * 1000:.0f} ms, "
            f"p99 {result['p99'] * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
