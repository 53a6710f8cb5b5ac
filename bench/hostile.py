"""Hostile clients against a live `manage.py runmail` (issue 12).

Runs each hostile pattern of the issue against the real mail process (SQLite in a temporary
folder, its own free loopback ports) and prints, for each: its wall time, the slowest answer
to one hostile command, the growth of the mail process's memory (VmRSS from /proc, the peak
while the pattern ran, over the figure before it) and the greeting latency (p50/p99/max) of
another door (POP3) probed every 20 ms meanwhile, and how many ticks of the server's
loop-lag watchdog came over 100 ms and over 250 ms late (from its metrics). Only real
greetings (``+OK``) count as greetings; a refusal is counted apart. Just before each pattern
the same probe runs alone for 3 s: that baseline is the machine's own latency in the same
minute (other processes share the cores).

Targets: the other door's greeting < 100 ms p99, the process < 200 MB, each hostile command
answered within 1 s or refused.

Patterns: LIST with hundreds of stars; big literals before login; FETCH amplification of a
1 MB message; big DATA on many SMTP connections; many idle connections before login (from 20
loopback addresses, 1,000 in all); TLS handshakes that never finish, on IMAPS, POP3S and 465.

Usage: .venv/bin/python bench/hostile.py [--keep]
"""

import argparse
import contextlib
import imaplib
import json
import os
import re
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "hostile bench password"
USER = "demo@example.test"
DOORS = ("SMTP", "SUBMISSION", "SUBMISSIONS", "IMAP", "IMAPS", "POP3", "POP3S", "MANAGESIEVE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


class MailProcess:
    def __init__(self, keep: bool):
        self.var = tempfile.mkdtemp(prefix="correio-hostile-")
        self.keep = keep
        self.ports = {door: free_port() for door in DOORS}
        self.metrics_port = free_port()
        self.env = {
            **os.environ, "CORREIO_VAR_DIR": self.var, "DJANGO_SETTINGS_MODULE": "webmail.settings",
            **{f"CORREIO_{door}_ADDR": f"127.0.0.1:{port}" for door, port in self.ports.items()},
            "CORREIO_METRICS_ADDR": f"127.0.0.1:{self.metrics_port}",
        }
        for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
            self.env.pop(name, None)
        self.proc: subprocess.Popen | None = None
        self.log = Path(self.var) / "runmail.log"

    def manage(self, *args: str) -> None:
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True,
                       stdout=subprocess.DEVNULL)

    def start(self) -> None:
        self.manage("migrate", "--noinput", "-v0")
        self.manage("makecert")
        self.manage("createdomain", "example.test")
        self.manage("createmailbox", USER, "--password", PASSWORD)
        self.proc = subprocess.Popen([sys.executable, "manage.py", "runmail"], cwd=ROOT,
                                     env=self.env, stdout=self.log.open("w"),
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.ports["POP3"]), timeout=1).close()
                socket.create_connection(("127.0.0.1", self.ports["IMAP"]), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("runmail did not start; see " + str(self.log))

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if not self.keep:
            shutil.rmtree(self.var, ignore_errors=True)


def loop_lag_buckets(port: int) -> dict[float, float]:
    """The mail process's event-loop lag histogram (cumulative counts by upper bound), from
    its metrics endpoint: the watchdog's ticks, measured inside the server."""
    import urllib.request

    buckets = {}
    with contextlib.suppress(OSError):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
            for line in reply.read().decode().splitlines():
                match = re.match(r'correio_event_loop_lag_seconds_bucket\{le="([^"]+)"\} (\S+)',
                                 line)
                if match:
                    buckets[float(match.group(1))] = float(match.group(2))
    return buckets


def lag_summary(before: dict[float, float], after: dict[float, float]) -> str:
    """Ticks of the loop over 100 ms and over 250 ms between two scrapes, of all ticks."""
    if not before or not after:
        return "n/a"
    delta = {le: after[le] - before.get(le, 0) for le in after}
    total = delta.get(float("inf"), 0)
    return f"{total - delta.get(0.1, 0):.0f}/{total - delta.get(0.25, 0):.0f} of {total:.0f}"


@dataclass
class Probe:
    """Greeting latency of one door and the mail process's peak memory, sampled meanwhile.

    The greetings are probed from a process of their own (``--probe PORT``): the threads that
    drive a pattern here (40 senders of big DATA...) would otherwise delay the probe's own
    thread on this process's GIL and charge that wait to the server."""

    port: int
    pid: int
    latencies: list[float] = field(default_factory=list)
    # A refusal ("-ERR [SYS/TEMP] ...") comes fast but is no working door: counted apart, never
    # as a greeting.
    refusals: int = 0
    failures: int = 0
    peak_rss: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self):
        self.base_rss = rss_mib(self.pid)
        self.prober = subprocess.Popen([sys.executable, __file__, "--probe", str(self.port)],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.prober.stdout.readline()  # "ready"
        self.thread = threading.Thread(target=self._memory, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join()
        out, _ = self.prober.communicate(b"stop\n", timeout=60)
        result = json.loads(out)
        self.latencies, self.refusals = result["latencies"], result["refusals"]
        self.failures = result["failures"]

    def _memory(self) -> None:
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, rss_mib(self.pid))
            self._stop.wait(0.02)


def probe_greetings(port: int) -> None:
    """The prober's process: a POP3 greeting every 20 ms until told to stop on stdin, then
    the figures as JSON on stdout. Only ``+OK`` greetings are timed."""
    stop = threading.Event()
    latencies, counts = [], {"refusals": 0, "failures": 0}

    def run() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                    line = sock.makefile("rb").readline()
                    took = time.perf_counter() - started
                    if line.startswith(b"+OK"):
                        latencies.append(took)
                        sock.sendall(b"QUIT\r\n")
                    else:
                        counts["refusals"] += 1
            except OSError:
                counts["failures"] += 1
            stop.wait(0.02)

    thread = threading.Thread(target=run)
    thread.start()
    print("ready", flush=True)
    sys.stdin.readline()
    stop.set()
    thread.join()
    print(json.dumps({"latencies": latencies, **counts}), flush=True)


@dataclass
class Outcome:
    slowest: float  # seconds, the slowest answer to one hostile command (or refusal)
    note: str


def imap_login() -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", MAIL.ports["IMAP"], timeout=30)
    client.login(USER, PASSWORD)
    return client


def raw_command(sock: socket.socket, reader, data: bytes, tag: bytes) -> tuple[float, bytes]:
    started = time.perf_counter()
    sock.sendall(data)
    last = b""
    while True:
        line = reader.readline()
        if not line or line.startswith(tag + b" ") or line.startswith(b"* BYE"):
            return time.perf_counter() - started, line or last
        last = line


# --- the patterns ------------------------------------------------------------------------------

def list_stars() -> Outcome:
    client = imap_login()
    slowest, answers = 0.0, set()
    for stars in (38, 50, 200, 400, 1000):
        for _ in range(5):
            started = time.perf_counter()
            typ, _ = client.list('""', '"' + "*" * stars + 'X"')
            slowest = max(slowest, time.perf_counter() - started)
            answers.add(f"{stars}*:{typ}")
    client.logout()
    return Outcome(slowest, "LIST 38-1,000 stars x5: " + " ".join(sorted(answers, key=len)))


def preauth_literals() -> Outcome:
    slowest, replies = 0.0, set()
    socks = []
    for _ in range(50):
        sock = socket.create_connection(("127.0.0.1", MAIL.ports["IMAP"]), timeout=30)
        reader = sock.makefile("rb")
        reader.readline()
        socks.append(sock)
        # The attack: four 20 MiB literals in one APPEND before login.
        took, reply = raw_command(sock, reader, b"a APPEND INBOX {20971520}\r\n", b"a")
        slowest = max(slowest, took)
        replies.add(reply.split(b" ")[1].decode() if b" " in reply else repr(reply))
        try:
            sock.sendall(b"x" * 65536)  # pushes on without a "+": must not be kept
        except OSError:
            pass
    for sock in socks:
        sock.close()
    return Outcome(slowest, f"50 x APPEND {{20 MiB}} before login: {sorted(replies)}, no '+'")


def fetch_amplification() -> Outcome:
    client = imap_login()
    client.select("INBOX")
    sock, reader = client.sock, client.file
    items = " ".join(["BODY.PEEK[]"] * 150)
    took, reply = raw_command(sock, reader, f"f1 FETCH 1 ({items})\r\n".encode(), b"f1")
    out = 0
    # Distinct sections too: 150 partial ranges of the 1 MB body.
    parts = " ".join(f"BODY.PEEK[]<{i * 7000}.1000000>" for i in range(150))
    started = time.perf_counter()
    sock.sendall(f"f2 FETCH 1 ({parts})\r\n".encode())
    while True:
        line = reader.readline()
        match = re.search(rb"\{(\d+)\}\r\n\Z", line)
        if match:
            size = int(match.group(1))
            out += size
            remaining = size
            while remaining:
                remaining -= len(reader.read(min(remaining, 1 << 20)))
        if not line or line.startswith(b"f2 "):
            break
    took2 = time.perf_counter() - started
    client.logout()
    return Outcome(max(took, took2),
                   f"150 x BODY.PEEK[]: {reply.split(b' ')[1].decode()} in {took * 1000:.0f} ms; "
                   f"150 partial ranges: {line.split(b' ')[1].decode()}, {out / 2**20:.0f} MiB "
                   f"streamed in {took2:.1f} s")


def big_data() -> Outcome:
    body = (b"x" * 76 + b"\r\n") * (5 * 2**20 // 78)
    codes: dict[str, int] = {}
    slowest = 0.0
    lock = threading.Lock()

    def one(i: int) -> None:
        nonlocal slowest
        try:
            with socket.create_connection(("127.0.0.1", MAIL.ports["SMTP"]), timeout=60) as sock:
                reader = sock.makefile("rb")
                reader.readline()
                for line in (b"EHLO hostile.test", b"MAIL FROM:<a@remote.test>",
                             f"RCPT TO:<{USER}>".encode()):
                    sock.sendall(line + b"\r\n")
                    while (reply := reader.readline())[3:4] == b"-":
                        pass
                started = time.perf_counter()
                sock.sendall(b"DATA\r\n")
                reply = reader.readline()
                if reply.startswith(b"354"):
                    for start in range(0, len(body), 1 << 16):
                        sock.sendall(body[start:start + (1 << 16)])
                        time.sleep(0.005)  # a slow sender: the spool, not memory, holds it
                    started = time.perf_counter()
                    sock.sendall(b".\r\n")
                    reply = reader.readline()
                took = time.perf_counter() - started
        except OSError as error:
            reply, took = f"{type(error).__name__}".encode(), 0.0
        with lock:
            slowest = max(slowest, took)
            key = reply[:9].decode(errors="replace").strip()
            codes[key] = codes.get(key, 0) + 1

    threads = [threading.Thread(target=one, args=(i,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Outcome(slowest, f"40 connections x 5 MiB DATA, one address: {codes}")


def source_addresses(count: int) -> list[str]:
    return [f"127.0.0.{i}" for i in range(2, 2 + count)]


def idle_preauth() -> Outcome:
    socks, refused = [], 0
    started = time.perf_counter()
    for ip in source_addresses(20):
        for _ in range(55):  # 5 over the per-address limit
            try:
                sock = socket.create_connection(("127.0.0.1", MAIL.ports["IMAP"]), timeout=10,
                                                source_address=(ip, 0))
                socks.append(sock)
            except OSError:
                refused += 1
    greeted = byes = 0
    for sock in socks:
        line = sock.makefile("rb").readline()
        if line.startswith(b"* OK"):
            greeted += 1
        elif line.startswith(b"* BYE"):
            byes += 1
    slowest = time.perf_counter() - started
    time.sleep(3)  # held open, saying nothing
    for sock in socks:
        sock.close()
    return Outcome(slowest / max(1, len(socks)),
                   f"{len(socks)} IMAP connections from 20 addresses held idle: {greeted} greeted, "
                   f"{byes} BYE (limits: 50 per address, 1,000 in all)")


def tls_greeting(door: str) -> tuple[float, bytes]:
    """A real client on an implicit-TLS door: the time to its greeting, and the greeting."""
    import ssl

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    started = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", MAIL.ports[door]), timeout=10) as raw:
            with context.wrap_socket(raw) as tls:
                return time.perf_counter() - started, tls.recv(100)
    except OSError as error:
        return time.perf_counter() - started, f"{type(error).__name__}".encode()


def slow_tls() -> Outcome:
    socks = []
    for door in ("IMAPS", "POP3S", "SUBMISSIONS"):
        for ip in source_addresses(10):
            for _ in range(20):
                try:
                    sock = socket.create_connection(("127.0.0.1", MAIL.ports[door]), timeout=10,
                                                    source_address=(ip, 0))
                    sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # half a hello
                    socks.append(sock)
                except OSError:
                    pass
    time.sleep(1)
    # Real clients on each door while the half-open handshakes are held.
    served = {door: tls_greeting(door) for door in ("IMAPS", "POP3S", "SUBMISSIONS")}
    time.sleep(2)
    closed = 0  # connections the server closed at once (over the handshake bounds)
    for sock in socks:
        sock.setblocking(False)
        try:
            closed += sock.recv(1) == b""
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        sock.close()
    slowest = max(took for took, _ in served.values())
    greetings = ", ".join(f"{door} {greeting[:4].decode(errors='replace').strip()} "
                          f"{took * 1000:.0f} ms" for door, (took, greeting) in served.items())
    return Outcome(slowest, f"{len(socks)} half-open TLS handshakes (IMAPS, POP3S, 465) from 10 "
                            f"addresses held 3 s, {closed} closed at once by the handshake "
                            f"bounds; real TLS clients meanwhile: {greetings}")


PATTERNS = [
    ("LIST with many stars", list_stars),
    ("pre-auth big literals", preauth_literals),
    ("FETCH amplification", fetch_amplification),
    ("big DATA, many connections", big_data),
    ("many pre-auth idle connections", idle_preauth),
    ("slow TLS handshakes", slow_tls),
]
MAIL: MailProcess
BASELINE_SECONDS = 3.0


def deliver_big_message() -> None:
    body = "".join(f"line {i:06d} " + "y" * 64 + "\r\n" for i in range(13_000))  # ~1 MB
    with smtplib.SMTP("127.0.0.1", MAIL.ports["SMTP"], timeout=60) as client:
        client.sendmail("a@remote.test", [USER],
                        f"Subject: one megabyte\r\nFrom: a@remote.test\r\n\r\n{body}".encode())


def main() -> None:
    global MAIL
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the data folder and log")
    parser.add_argument("--only", help="run only the patterns whose name contains this")
    args = parser.parse_args()
    MAIL = MailProcess(args.keep)
    MAIL.start()
    try:
        deliver_big_message()
        pid = MAIL.proc.pid
        print(f"runmail pid {pid}, {rss_mib(pid):.0f} MiB at start; other door probed: POP3\n")
        print(f"{'pattern':32} {'time':>7} {'slowest':>8} {'RSS +':>7} {'peak':>6} "
              f"{'greet p50':>9} {'p99':>7} {'max':>7} {'base p50':>8} {'p99':>6} {'refused':>7} "
              f"{'lag>.1/.25 s':>16}  result")
        for name, pattern in PATTERNS:
            if args.only and args.only not in name:
                continue
            # The same door without the pattern, just before it: the machine's own latency.
            with Probe(MAIL.ports["POP3"], pid) as baseline:
                time.sleep(BASELINE_SECONDS)
            started = time.perf_counter()
            lag_before = loop_lag_buckets(MAIL.metrics_port)
            with Probe(MAIL.ports["POP3"], pid) as probe:
                try:
                    outcome = pattern()
                except Exception as error:  # noqa: BLE001 - reported in the table
                    outcome = Outcome(float("nan"), f"failed: {error!r}")
            took = time.perf_counter() - started
            lag = lag_summary(lag_before, loop_lag_buckets(MAIL.metrics_port))
            lat = [x * 1000 for x in probe.latencies]
            base = [x * 1000 for x in baseline.latencies]
            print(f"{name:32} {took:6.1f}s {outcome.slowest * 1000:6.0f}ms "
                  f"{probe.peak_rss - probe.base_rss:+6.0f}M {probe.peak_rss:5.0f}M "
                  f"{percentile(lat, 50):7.1f}ms {percentile(lat, 99):5.1f}ms "
                  f"{max(lat, default=float('nan')):5.1f}ms {percentile(base, 50):6.1f}ms "
                  f"{percentile(base, 99):4.1f}ms {probe.refusals + baseline.refusals:7d} "
                  f"{lag:>16}  "
                  f"{outcome.note} [{len(lat)} greetings, {len(base)} baseline]"
                  + (f" [{probe.failures} probe failures]" if probe.failures else ""))
            time.sleep(1)
        log = MAIL.log.read_text().splitlines()
        lag = [line for line in log if "event loop lagged" in line]
        stalls = [line for line in log if "event loop stalled" in line]
        tracebacks = sum(line.startswith("Traceback") for line in log)
        print(f"\nfinal RSS {rss_mib(pid):.0f} MiB; loop-lag warnings: {len(lag)}; stalls "
              f"(connections shed): {len(stalls)}; tracebacks in the log: {tracebacks}")
        for line in (stalls + lag)[:6]:
            print("  " + line)
    finally:
        MAIL.stop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--probe"]:
        probe_greetings(int(sys.argv[2]))
        sys.exit()
    with contextlib.suppress(KeyboardInterrupt):
        main()
