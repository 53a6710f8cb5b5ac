"""IMAP benchmark: a 20,000-message mailbox served by `runimap` in its own process.

Reports SELECT time, `FETCH 1:* (UID FLAGS ENVELOPE)` time, `UID SEARCH TEXT` time, SORT and
THREAD times (p95 of 20; RFC 5256, the mailbox's messages in threads of five), logins/s,
commands/s with 10 concurrent clients doing a mixed load (login, list, status, select, fetch,
store, append, expunge, logout), and the server's memory per idle session (1,000 sessions
logged in, INBOX selected, in IDLE). Sets up its own data in a temporary CORREIO_VAR_DIR with
Django's real password hasher, prints its figures and exits.

Usage: .venv/bin/python bench/imap.py [--messages 20000] [--seconds 10] [--idle 1000]
       .venv/bin/python bench/imap.py --only sort --messages 100000   (issue 15's target)
"""

import argparse
import imaplib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PORT = 32001
PASSWORD = "bench password 1"


def setup_data(messages: int, users: int) -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from mailcore.services import accounts, delivery
    from tests.factories import make_message

    accounts.create_domain("example.test")
    big = accounts.create_mailbox("big@example.test", PASSWORD)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda".split()
    batch = []
    for i in range(messages):
        body = f"Message {i} " + " ".join(words[(i + k) % len(words)] for k in range(40)) + "\n"
        if i % 1000 == 0:
            body += "needle in a haystack\n"
        # Threads of five: a message and four replies to it, for THREAD=REFERENCES.
        root = f"<bench-{i - i % 5}@remote.test>"
        reply = i % 5 != 0
        subject = f"Bench {i - i % 5} {words[(i - i % 5) % len(words)]}"
        batch.append((make_message(subject=("Re: " if reply else "") + subject, body=body,
                                   message_id=f"<bench-{i}@remote.test>",
                                   in_reply_to=root if reply else None,
                                   references=root if reply else None,
                                   sender=f"Sender {i % 97} <s{i % 97}@remote.test>"),
                      [big.pk]))
        if len(batch) == 500:
            delivery.deliver_to_inboxes(batch)
            batch = []
    if batch:
        delivery.deliver_to_inboxes(batch)
    for u in range(users):
        box = accounts.create_mailbox(f"user{u}@example.test", PASSWORD)
        delivery.deliver_to_inboxes([(make_message(subject=f"u{u} m{i}"), [box.pk])
                                for i in range(200)])


SERVER = """
import django
django.setup()
from mailcore.protocols.common import runner
from mailcore.protocols.common.config import ListenerConfig
runner.run(["imap"], ListenerConfig.from_settings(max_connections=5000,
                                                  max_connections_per_ip=5000))
"""


def start_server(env: dict) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", SERVER], cwd=ROOT, env=env)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def timed(fn, repeat=5):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def connect(user="big@example.test") -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", PORT, timeout=60)
    client.login(user, PASSWORD)
    return client


def bench_single(messages: int) -> None:
    client = connect()
    started = time.perf_counter()
    client.select("INBOX")
    cold = time.perf_counter() - started
    select = timed(lambda: client.select("INBOX"))
    typ, data = client.select("INBOX")
    assert int(data[0]) == messages, data
    fetch = timed(lambda: client.fetch("1:*", "(UID FLAGS ENVELOPE)"), repeat=3)
    search = timed(lambda: client.uid("SEARCH", "TEXT", "needle"), repeat=3)
    found = client.uid("SEARCH", "TEXT", "needle")[1][0].split()
    client.logout()
    print(f"SELECT INBOX ({messages} messages): {select * 1000:.1f} ms (median of 5; the first "
          f"of this server process, which reads every UID: {cold * 1000:.1f} ms)")
    print(f"FETCH 1:* (UID FLAGS ENVELOPE): {fetch:.3f} s (median of 3)")
    print(f"UID SEARCH TEXT needle: {search:.3f} s, {len(found)} hits (median of 3)")


def p95(fn, repeat=20) -> tuple[float, float]:
    """(p95, median) of ``repeat`` runs, in seconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.quantiles(times, n=20)[-1], statistics.median(times)


def bench_sort(messages: int) -> None:
    client = connect()
    client.select("INBOX")
    commands = [
        ("UID SORT (DATE) UTF-8 ALL", lambda: client.uid("SORT", "(DATE)", "UTF-8", "ALL")),
        ("UID SORT (REVERSE ARRIVAL) UTF-8 ALL",
         lambda: client.uid("SORT", "(REVERSE ARRIVAL)", "UTF-8", "ALL")),
        ("UID SORT (SUBJECT) UTF-8 ALL", lambda: client.uid("SORT", "(SUBJECT)", "UTF-8", "ALL")),
        ("UID SORT (FROM DATE) UTF-8 ALL",
         lambda: client.uid("SORT", "(FROM DATE)", "UTF-8", "ALL")),
        ("UID THREAD REFERENCES UTF-8 ALL",
         lambda: client.uid("THREAD", "REFERENCES", "UTF-8", "ALL")),
        ("UID THREAD ORDEREDSUBJECT UTF-8 ALL",
         lambda: client.uid("THREAD", "ORDEREDSUBJECT", "UTF-8", "ALL")),
    ]
    for name, run in commands:
        typ, data = run()
        assert typ == "OK", (name, data)
        high, middle = p95(run)
        print(f"{name} ({messages} messages): p95 {high * 1000:.0f} ms, median "
              f"{middle * 1000:.0f} ms (20 runs, imaplib reading the answer included)")
    client.logout()


def bench_logins(seconds: float) -> None:
    connect().logout()  # the first login pays the password hash; later ones use the cache
    count = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker():
        nonlocal count
        while time.monotonic() < stop:
            client = imaplib.IMAP4("127.0.0.1", PORT, timeout=60)
            client.login("big@example.test", PASSWORD)
            client.logout()
            with lock:
                count += 1

    threads = [threading.Thread(target=worker) for _ in range(4)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    print(f"logins/s (connect + LOGIN + LOGOUT, 4 clients): {count / elapsed:.0f}")


def bench_mixed(seconds: float, users: int) -> None:
    # One login per user first: the first pays the password hash (0.3 s each here), which is
    # what logins/s above measures; this measures the steady mix.
    for u in range(users):
        connect(f"user{u}@example.test").logout()
    counts = [0] * users
    errors = []
    stop = time.monotonic() + seconds
    raw = b"From: a@remote.test\r\nTo: x@example.test\r\nSubject: mix\r\n\r\nhello\r\n"

    def worker(u: int):
        user = f"user{u}@example.test"
        try:
            while time.monotonic() < stop:
                client = imaplib.IMAP4("127.0.0.1", PORT, timeout=60)
                client.login(user, PASSWORD)
                client.list()
                client.status("INBOX", "(MESSAGES UNSEEN UIDNEXT)")
                client.select("INBOX")
                client.fetch("1:20", "(UID FLAGS ENVELOPE)")
                client.store("1:5", "+FLAGS", "(\\Seen)")
                client.append("INBOX", None, None, raw)
                client.uid("STORE", "*", "+FLAGS.SILENT", "(\\Deleted)")
                client.expunge()
                client.logout()
                counts[u] += 10
        except Exception as error:  # reported, not hidden
            errors.append(repr(error))

    threads = [threading.Thread(target=worker, args=(u,)) for u in range(users)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    print(f"mixed load, {users} clients (after one login each): "
          f"{sum(counts) / elapsed:.0f} commands/s"
          f"{' ERRORS: ' + '; '.join(errors[:3]) if errors else ''}")


def bench_idle(pid: int, sessions: int) -> None:
    socks = []
    before = rss_kib(pid)
    login = f'a LOGIN big@example.test "{PASSWORD}"\r\nb SELECT Drafts\r\nc IDLE\r\n'.encode()
    for _ in range(sessions):
        sock = socket.create_connection(("127.0.0.1", PORT), timeout=30)
        sock.sendall(login)
        socks.append(sock)
    for sock in socks:
        data = b""
        while b"+ idling" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                raise SystemExit("idle session closed")
            data += chunk
    time.sleep(1)
    after = rss_kib(pid)
    print(f"{sessions} idle sessions (logged in, folder selected, IDLE): server RSS "
          f"+{(after - before) / 1024:.1f} MiB = {(after - before) / sessions:.1f} KiB/session")
    for sock in socks:
        sock.close()
    time.sleep(1)  # let the server see the closes before it is stopped


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--only", choices=["sort"], help="run only these figures")
    parser.add_argument("--reuse", metavar="DIR",
                        help="a data folder kept from an earlier run (its mailbox is reused)")
    args = parser.parse_args()
    tmp = os.path.abspath(args.reuse) if args.reuse else tempfile.mkdtemp(
        prefix="correio-bench-imap-")
    env = dict(os.environ)
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
        env.pop(name, None)
    env.update(
        CORREIO_VAR_DIR=tmp, DJANGO_SETTINGS_MODULE="webmail.settings",
        CORREIO_IMAP_ADDR=f"127.0.0.1:{PORT}", CORREIO_IMAPS_ADDR="", CORREIO_LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    os.environ.update(env)
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)
    sys.path.insert(0, str(ROOT))
    started = time.monotonic()
    if args.reuse and Path(tmp, "correio.sqlite3").exists():
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        print(f"reusing the data under {tmp}")
    else:
        setup_data(args.messages, 10)
        print(f"setup: {args.messages} messages in {time.monotonic() - started:.0f} s "
              f"(SQLite under {tmp})")
    proc = start_server(env)
    try:
        if args.only == "sort":
            bench_sort(args.messages)
            return
        bench_single(args.messages)
        bench_sort(args.messages)
        bench_logins(min(args.seconds, 5))
        bench_mixed(args.seconds, 10)
        bench_idle(proc.pid, args.idle)
    finally:
        proc.terminate()
        proc.wait(10)
        if not args.reuse:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
