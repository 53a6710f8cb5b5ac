"""Outbound relay benchmark: 2,000 messages through the queue and one Celery worker to a local
sink (an aiosmtpd server that answers at once), embedded (filesystem broker) and with Redis.

Prints, per broker, messages/s end to end (first message accepted → last remote 250) and the
queue latency (accepted → remote 250) p50/p99. Runs on SQLite in a temporary CORREIO_VAR_DIR;
``--redis`` uses a private redis-server on a free loopback port (Debian's), ``--redis-url``
an existing one.

    .venv/bin/python bench/relay.py [--messages 2000] [--brokers embedded,redis] [--via service]

By default (``--via submission``) 10 clients submit over SMTP AUTH to the submission port of a
``manage.py runsmtp`` process; ``--via service`` calls enqueue_outbound from 8 threads instead.

The bar (issue 4): at least 200 messages/s end to end with Redis and one worker, median queue
latency under 1 s when the far side answers at once."""

import argparse
import asyncio
import base64
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


async def submit_all(port: int, messages: list[bytes], accepted: dict, connections: int = 10,
                     pace: float = 0.0):
    """Ten clients, each logged in once (AUTH PLAIN; loopback needs no TLS), pipelining MAIL,
    RCPT and DATA (RFC 2920) for its share of the messages."""
    plain = base64.b64encode(f"\0{SENDER}\0bench-password".encode()).decode()

    async def client(indexes):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def reply() -> bytes:
            while True:
                line = await reader.readline()
                if not line:
                    raise ConnectionError("the listener closed the connection")
                if line[3:4] != b"-":
                    return line

        await reply()
        writer.write(b"EHLO bench.example.test\r\n")
        await reply()
        writer.write(f"AUTH PLAIN {plain}\r\n".encode())
        if not (await reply()).startswith(b"235"):
            raise RuntimeError("AUTH failed")
        began = time.time()
        for n, i in enumerate(indexes):
            if pace:
                # An even stream of ``pace`` messages/s in all, to see latency without a backlog.
                await asyncio.sleep(max(0.0, began + n * connections / pace - time.time()))
            writer.write(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<to{i}@remote.test>\r\nDATA\r\n"
                         .encode())
            for expected in (b"250", b"250", b"354"):
                line = await reply()
                if not line.startswith(expected):
                    raise RuntimeError(f"unexpected {line!r}")
            writer.write(messages[i] + b".\r\n")
            line = await reply()
            if not line.startswith(b"250"):
                raise RuntimeError(f"message {i} refused: {line!r}")
            accepted[i] = time.time()
        writer.write(b"QUIT\r\n")
        writer.close()

    for _ in range(100):  # wait for the listener
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            break
        except OSError:
            await asyncio.sleep(0.1)
    await asyncio.gather(*(client(range(c, len(messages), connections))
                           for c in range(connections)))


def run(broker: str, count: int, redis_url: str | None, via: str, pace: float = 0.0) -> dict:
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
    submission_port = free_port()
    listener = None
    if via == "submission":
        # The submission listener alone, in its own process, as `make run` runs it.
        listener = subprocess.Popen(
            [sys.executable, "manage.py", "runsmtp"], cwd=ROOT, start_new_session=True,
            env={**env, "CORREIO_SMTP_ADDR": "", "CORREIO_SUBMISSIONS_ADDR": "",
                 "CORREIO_SUBMISSION_ADDR": f"127.0.0.1:{submission_port}"})
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "webmail", "worker",
         "--loglevel=" + os.environ.get("BENCH_WORKER_LOGLEVEL", "WARNING"),
         "--concurrency=2", "-Q", env["CORREIO_CELERY_QUEUE"], "--without-mingle",
         "--without-gossip", *os.environ.get("BENCH_WORKER_ARGS", "").split()],
        cwd=ROOT, env=env, start_new_session=True)
    try:
        import django

        os.environ["DJANGO_SETTINGS_MODULE"] = "webmail.settings"
        django.setup()
        from django.db import connections

        from mailcore.services import accounts
        from mailcore.services.outbound import queue as outbound

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

        if via == "submission":
            connections.close_all()
            asyncio.run(submit_all(submission_port, messages, accepted, pace=pace))
        else:
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
        for proc in (worker, listener):
            if proc is None:
                continue
            proc.terminate()  # the main process only: a warm shutdown
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if redis_proc:
            redis_proc.kill()
        sink.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--brokers", default="embedded,redis")
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--via", choices=["submission", "service"], default="submission")
    parser.add_argument("--pace", type=float, default=0.0,
                        help="submit at this many messages/s (latency without a backlog)")
    parser.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        serve_sink()
        return
    for broker in args.brokers.split(","):
        # Each broker runs in a process of its own: Django settings are read once per process.
        if len(args.brokers.split(",")) > 1:
            command = [sys.executable, __file__, "--messages", str(args.messages),
                       "--brokers", broker, "--via", args.via, "--pace", str(args.pace)]
            if args.redis_url:
                command += ["--redis-url", args.redis_url]
            subprocess.run(command, check=True)
            continue
        result = run(broker, args.messages, args.redis_url, args.via, args.pace)
        print(
            f"relay [{result['broker']}, via {args.via}"
            f"{f', paced at {args.pace:g}/s' if args.pace else ''}]: {result['messages']} messages, "
            f"accepted {result['accept_rate']:.0f}/s, end to end {result['end_to_end_rate']:.0f}"
            f" messages/s, queue latency p50 {result['p50'] * 1000:.0f} ms, "
            f"p99 {result['p99'] * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
