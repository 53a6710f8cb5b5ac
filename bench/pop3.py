"""Benchmark: POP3 retrieval of a 5,000-message mailbox.

Sets up its own data in a temporary CORREIO_VAR_DIR (SQLite, the embedded defaults), delivers
5,000 varied messages (about 100 MB) through the service layer, starts the POP3 listener
(``manage.py runpop3``) in its own process on a loopback port, and measures with a raw-socket client:
- login (USER/PASS) + STAT + LIST (the median of 5: after the first, logins are served by the
  verified-credentials cache); the password check itself is Django's PBKDF2 (1,000,000
  iterations), timed separately, and so is the first maildrop snapshot after delivery;
- RETR of every message, one after another: messages/s and MB/s (1 MB = 10^6 octets).

Targets (issue 6): 50 MB/s of RETR, login + STAT + LIST under 100 ms.
Run: .venv/bin/python bench/pop3.py [--messages N]"""

import argparse
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench password"


def setup_django(var_dir: str) -> None:
    os.environ["CORREIO_VAR_DIR"] = var_dir
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webmail.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def build_messages(count: int) -> list[bytes]:
    from email.message import EmailMessage
    from email.policy import SMTP

    rng = random.Random(6)
    words = ("mail post office protocol message body line text data server client "
             "maildrop octet stuffing transaction update").split()

    def paragraph(size: int) -> str:
        lines, total = [], 0
        while total < size:
            line = " ".join(rng.choice(words) for _ in range(rng.randint(4, 12)))
            if rng.random() < 0.03:
                line = "." + line  # lines the server must byte-stuff
            lines.append(line)
            total += len(line) + 1
        return "\n".join(lines) + "\n"

    messages = []
    for n in range(count):
        msg = EmailMessage()
        msg["From"] = f"Sender {n % 97} <sender{n % 97}@remote.test>"
        msg["To"] = "bench@example.test"
        msg["Subject"] = f"Message {n}: " + " ".join(rng.choice(words) for _ in range(5))
        msg["Message-ID"] = f"<bench-{n}@remote.test>"
        kind = rng.random()
        if kind < 0.60:
            msg.set_content(paragraph(rng.randint(1_000, 6_000)))
        elif kind < 0.95:
            text = paragraph(rng.randint(4_000, 15_000))
            msg.set_content(text)
            msg.add_alternative("<html><body><p>" + text.replace("\n", "</p><p>")
                                + "</p></body></html>", subtype="html")
        else:
            msg.set_content(paragraph(2_000))
            msg.add_attachment(rng.randbytes(rng.randint(50_000, 250_000)),
                               maintype="application", subtype="octet-stream",
                               filename=f"file{n}.bin")
        raw = msg.as_bytes(policy=SMTP)
        if rng.random() < 0.10:
            raw = raw.replace(b"\r\n", b"\n")  # stored with bare LFs: sent as CRLF
        messages.append(raw)
    return messages


def deliver(messages: list[bytes], mailbox_id: int) -> None:
    from mailcore.services import delivery

    for start in range(0, len(messages), 100):
        delivery.deliver_to_inboxes([(raw, [mailbox_id]) for raw in messages[start : start + 100]])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_listener(var_dir: str) -> tuple[subprocess.Popen, int]:
    """``manage.py runpop3`` in its own process, as in production (the client here must not
    share a GIL with the server)."""
    port = free_port()
    env = dict(os.environ, CORREIO_VAR_DIR=var_dir, CORREIO_POP3_ADDR=f"127.0.0.1:{port}",
               CORREIO_POP3S_ADDR="", CORREIO_LOG_LEVEL="WARNING")
    server = subprocess.Popen([sys.executable, "manage.py", "runpop3"], cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, port
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError("runpop3 did not start") from None
            time.sleep(0.2)


class Client:
    """A minimal POP3 client: it reads into one preallocated buffer and looks only at the end
    for the terminator, so that it is not the bottleneck of what it measures."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray(1 << 22)
        self.view = memoryview(self.buf)
        self.start = self.end = 0
        self.line()

    def _fill(self) -> None:
        if self.start == self.end:
            self.start = self.end = 0
        if self.end == len(self.buf):
            pending = bytes(self.view[self.start : self.end])
            self.buf = bytearray(max(len(self.buf), 2 * len(pending)))
            self.view = memoryview(self.buf)
            self.buf[: len(pending)] = pending
            self.start, self.end = 0, len(pending)
        received = self.sock.recv_into(self.view[self.end :])
        if not received:
            raise ConnectionError("closed")
        self.end += received

    def line(self) -> bytes:
        while (found := self.buf.find(b"\r\n", self.start, self.end)) < 0:
            self._fill()
        data = bytes(self.view[self.start : found + 2])
        self.start = found + 2
        return data

    def command(self, text: str) -> bytes:
        self.sock.sendall(text.encode() + b"\r\n")
        reply = self.line()
        if not reply.startswith(b"+OK"):
            raise RuntimeError(reply)
        return reply

    def body(self, at_least: int = 0) -> memoryview:
        """A multi-line body; the server sends nothing after it, so it ends the buffer."""
        while True:
            length = self.end - self.start
            if length >= 3 and (length >= at_least + 3 or at_least == 0):
                tail = self.buf[self.end - 5 : self.end] if length >= 5 else b""
                if tail == b"\r\n.\r\n" or (length == 3 and self.buf[self.start : self.end]
                                                == b".\r\n"):
                    data = self.view[self.start : self.end]
                    self.start = self.end
                    return data
            self._fill()


def login_stat_list(port: int) -> tuple[float, float, Client, int]:
    started = time.perf_counter()
    client = Client(port)
    client.command("USER bench@example.test")
    client.command(f"PASS {PASSWORD}")
    logged_in = time.perf_counter()
    count = int(client.command("STAT").split()[1])
    client.command("LIST")
    client.body()
    done = time.perf_counter()
    return logged_in - started, done - logged_in, client, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    args = parser.parse_args()
    var_dir = tempfile.mkdtemp(prefix="correio-bench-pop3-")
    try:
        setup_django(var_dir)
        run(args.messages, var_dir)
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)


def run(count: int, var_dir: str) -> None:
    from django.contrib.auth.hashers import check_password

    from mailcore.services import accounts, pop3, throttle

    accounts.create_domain("example.test")
    mailbox = accounts.create_mailbox("bench@example.test", PASSWORD, quota=0)
    started = time.perf_counter()
    messages = build_messages(count)
    deliver(messages, mailbox.pk)
    total_raw = sum(len(raw) for raw in messages)
    print(f"setup: {count} messages, {total_raw / 1e6:.1f} MB delivered in "
          f"{time.perf_counter() - started:.1f} s")

    hashes, opens, bookkeeping = [], [], []
    for _ in range(5):
        t = time.perf_counter()
        check_password(PASSWORD, mailbox.user.password)
        hashes.append(time.perf_counter() - t)
        # What authenticate() does besides the password check.
        t = time.perf_counter()
        reservation = throttle.reserve(mailbox.address, "127.0.0.1")
        accounts.get_mailbox(mailbox.address)
        throttle.succeeded(reservation)
        bookkeeping.append(time.perf_counter() - t)
    first = time.perf_counter()
    pop3.release_maildrop(mailbox.pk, pop3.open_maildrop(mailbox.pk).token)
    first = time.perf_counter() - first
    for _ in range(5):
        t = time.perf_counter()
        pop3.release_maildrop(mailbox.pk, pop3.open_maildrop(mailbox.pk).token)
        opens.append(time.perf_counter() - t)
    costs = {
        "hash": statistics.median(hashes),
        "bookkeeping": statistics.median(bookkeeping),
        "first open": first,
        "open": statistics.median(opens),
    }

    server, port = start_listener(var_dir)
    try:
        measure(port, messages, costs, server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux), to show the server's own cost
    whatever else the machine is doing."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(port: int, messages: list[bytes], costs: dict, server_pid: int) -> None:
    from mailcore.mime.wire import to_crlf

    runs = []
    for _ in range(5):
        login, stat_list, client, listed = login_stat_list(port)
        client.command("QUIT")
        runs.append((login, stat_list))
    login = statistics.median(r[0] for r in runs)
    stat_list = statistics.median(r[1] for r in runs)
    print(f"login + STAT + LIST of {listed} messages: {(login + stat_list) * 1000:.0f} ms "
          f"(median of 5: USER/PASS {login * 1000:.0f} ms, STAT + LIST {stat_list * 1000:.1f} ms)")
    print(f"  the PBKDF2 password check alone: {costs['hash'] * 1000:.0f} ms")
    rest = costs["bookkeeping"] + costs["open"] + stat_list
    print(f"  the rest, measured piece by piece: {rest * 1000:.0f} ms (target < 100 ms) = "
          f"credential bookkeeping {costs['bookkeeping'] * 1000:.1f} ms + maildrop lock and "
          f"snapshot {costs['open'] * 1000:.1f} ms + STAT and LIST {stat_list * 1000:.1f} ms")
    print(f"  (the very first login after delivery: lock and snapshot took "
          f"{costs['first open'] * 1000:.0f} ms; POP3 sizes are recorded at delivery)")

    _, _, client, listed = login_stat_list(port)
    octets = 0
    sample = set(random.Random(1).sample(range(1, listed + 1), 50))
    cpu_before = cpu_seconds(server_pid)
    started = time.perf_counter()
    for n in range(1, listed + 1):
        size = int(client.command(f"RETR {n}").split()[1])
        data = client.body(size)
        octets += size
        if n in sample:
            unstuffed = re.sub(rb"(?m)^\.", b"", bytes(data[:-3]))
            assert unstuffed == to_crlf(messages[n - 1]) and len(unstuffed) == size, n
    elapsed = time.perf_counter() - started
    server_cpu = cpu_seconds(server_pid) - cpu_before
    client.command("QUIT")
    print(f"RETR of all {listed} messages ({octets / 1e6:.1f} MB) one after another: "
          f"{elapsed:.2f} s = {listed / elapsed:,.0f} messages/s, "
          f"{octets / 1e6 / elapsed:.1f} MB/s (target >= 50 MB/s)")
    print(f"  server CPU for it: {server_cpu:.2f} s, i.e. {octets / 1e6 / server_cpu:.0f} MB "
          "per CPU-second of the POP3 process")


if __name__ == "__main__":
    main()
