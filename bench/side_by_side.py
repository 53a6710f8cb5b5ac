"""Correio and the reference servers measured by the same independent tools on this machine.

- SMTP intake: Postfix's ``smtp-source`` sends 2,000 messages of 5 KB over 10 sessions to
  ``manage.py runmail``'s MX and to a private Postfix (queue durable, then discarded).
- IMAP stress: Dovecot's ``imaptest`` stress mix (10 clients, 100 users, 20 s, an mbox of varied
  messages) against Correio's IMAP listener and a private Dovecot; commands/s and errors.
- IMAP APPEND: 5,000 messages over 2 connections (MULTIAPPEND when the server offers it, 100
  messages a command; plain APPEND otherwise) into both servers.

Both sides run on the same machine at the same time of day, one after the other, each from a
fresh temporary directory; Correio runs on SQLite (WAL, synchronous=FULL) as ``make run`` does.

    .venv/bin/python bench/side_by_side.py [--only smtp|imap|append] [--seconds 20]
"""

import argparse
import contextlib
import imaplib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import reference_servers as ref

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-password"
USERS = 100


def build_imaptest() -> str:
    out = subprocess.run(["bash", str(ROOT / "tests/imaptest/build.sh")], check=True,
                         capture_output=True, text=True).stdout
    return out.strip().splitlines()[-1]


@contextlib.contextmanager
def correio(users: int):
    """A fresh Correio (SQLite in a temporary var dir) with runmail's MX and IMAP listeners."""
    var_dir = tempfile.mkdtemp(prefix="correio-bench-sbs-")
    smtp_port, imap_port = ref.free_port(), ref.free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    env.update(
        CORREIO_VAR_DIR=var_dir, DJANGO_SETTINGS_MODULE="webmail.settings",
        CORREIO_SMTP_ADDR=f"127.0.0.1:{smtp_port}", CORREIO_IMAP_ADDR=f"127.0.0.1:{imap_port}",
        CORREIO_SUBMISSION_ADDR="", CORREIO_SUBMISSIONS_ADDR="", CORREIO_IMAPS_ADDR="",
        CORREIO_POP3_ADDR="", CORREIO_POP3S_ADDR="", CORREIO_MANAGESIEVE_ADDR="",
        CORREIO_METRICS_ADDR="",
    )
    setup = (
        "import django; django.setup()\n"
        "from django.core.management import call_command\n"
        "from mailcore.services import accounts\n"
        "call_command('migrate', verbosity=0)\n"
        "accounts.create_domain('example.test')\n"
        f"accounts.create_mailbox('bench@example.test', {PASSWORD!r}, quota=0)\n"
        f"for i in range(1, {users} + 1):\n"
        f"    accounts.create_mailbox(f'user{{i}}@example.test', {PASSWORD!r}, quota=0)\n"
    )
    python = str(ROOT / ".venv/bin/python")
    subprocess.run([python, "-c", setup], cwd=ROOT, env=env, check=True)
    log = open(Path(var_dir) / "runmail.log", "w")
    proc = subprocess.Popen([python, "manage.py", "runmail"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        ref.wait_for_port(smtp_port, 60)
        ref.wait_for_port(imap_port, 60)
        yield smtp_port, imap_port
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(var_dir, ignore_errors=True)


def smtp_source_rate(port: int, messages: int, sessions: int, size: int) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["smtp-source", "-s", str(sessions), "-m", str(messages), "-l", str(size),
         "-f", "sender@remote.test", "-t", "bench@example.test", f"127.0.0.1:{port}"],
        check=True, timeout=600,
    )
    return messages / (time.perf_counter() - started)


def warm_up(port: int, user: str) -> None:
    """Log every user in once: the first login of a user pays for the password hash (Correio's
    PBKDF2/Argon2, then its verified-credentials cache), which is not what the mix measures."""
    from concurrent.futures import ThreadPoolExecutor

    def login(i: int) -> None:
        client = imaplib.IMAP4("127.0.0.1", port, timeout=120)
        client.login(user % i, PASSWORD)
        client.logout()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(login, range(1, USERS + 1)))


def imaptest_stress(binary: str, port: int, user: str, seconds: int, mbox: Path) -> tuple[float, int]:
    warm_up(port, user)
    out = subprocess.run(
        [binary, "host=127.0.0.1", f"port={port}", f"user={user}", f"pass={PASSWORD}",
         f"users={USERS}", "clients=10", f"secs={seconds}", f"mbox={mbox}"],
        capture_output=True, text=True, timeout=seconds + 120,
    )
    out = out.stdout + out.stderr
    errors = sum(1 for line in out.splitlines() if line.startswith("Error:"))
    totals = out.split("Totals:", 1)[-1].strip().splitlines()
    counts = [int(n) for n in totals[-1].split()] if totals else []
    return sum(counts) / seconds, errors


def append_rate(port: int, user: str, messages: list[bytes], connections: int) -> tuple[float, str]:
    shares = [messages[i::connections] for i in range(connections)]
    modes = []

    def worker(share: list[bytes]) -> None:
        client = imaplib.IMAP4("127.0.0.1", port, timeout=300)
        client.login(user, PASSWORD)
        # Servers announce MULTIAPPEND after login (Dovecot's pre-login list is short).
        multi = "MULTIAPPEND" in client.capability()[1][0].decode().upper().split()
        modes.append("MULTIAPPEND" if multi else "APPEND")
        step = 100 if multi else 1
        for start in range(0, len(share), step):
            batch = share[start:start + step]
            tag = client._new_tag().decode()
            parts = [f"{tag} APPEND INBOX".encode()]
            for raw in batch:
                parts.append(b" {%d+}\r\n" % len(raw) + raw)
            client.send(b"".join(parts) + b"\r\n")
            while True:
                line = client.readline()
                if line.startswith(tag.encode()):
                    if not line.split()[1] == b"OK":
                        raise RuntimeError(f"APPEND refused: {line!r}")
                    break
        client.logout()

    threads = [threading.Thread(target=worker, args=(share,)) for share in shares]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(messages) / (time.perf_counter() - started), modes[0] if modes else "?"


def stress_mbox(path: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.imaptest.mbox import stress_mbox as make

    path.write_bytes(make())


def append_messages(count: int) -> list[bytes]:
    line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n"
    return [
        (f"From: Sender <s{i % 50}@remote.test>\r\nTo: bench@example.test\r\n"
         f"Subject: append {i}\r\nMessage-ID: <append-{i}@remote.test>\r\n"
         f"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n\r\n").encode() + line * 60
        for i in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["smtp", "imap", "append"])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--appends", type=int, default=5000)
    args = parser.parse_args()
    want = {args.only} if args.only else {"smtp", "imap", "append"}
    rows = []
    if "smtp" in want:
        with ref.postfix() as port:
            postfix_rate = smtp_source_rate(port, args.messages, 10, 5120)
        with correio(0) as (smtp_port, _):
            correio_rate = smtp_source_rate(smtp_port, args.messages, 10, 5120)
        rows.append((f"smtp-source {args.messages} x 5 KB, 10 sessions (msg/s)",
                     correio_rate, postfix_rate, "Postfix"))
    if "imap" in want:
        binary = build_imaptest()
        mbox = Path(tempfile.mkdtemp()) / "stress.mbox"
        stress_mbox(mbox)
        with ref.dovecot(PASSWORD) as port:
            dovecot_rate, dovecot_errors = imaptest_stress(binary, port, "user%d", args.seconds,
                                                           mbox)
        with correio(USERS) as (_, imap_port):
            correio_rate, correio_errors = imaptest_stress(
                binary, imap_port, "user%d@example.test", args.seconds, mbox)
        rows.append((f"imaptest stress, 10 clients/{USERS} users, {args.seconds} s (cmd/s)",
                     correio_rate, dovecot_rate, "Dovecot"))
        print(f"imaptest protocol errors: Correio {correio_errors}, Dovecot {dovecot_errors}")
    if "append" in want:
        messages = append_messages(args.appends)
        with ref.dovecot(PASSWORD) as port:
            dovecot_rate, dovecot_mode = append_rate(port, "bench", messages, 2)
        with correio(0) as (_, imap_port):
            correio_rate, correio_mode = append_rate(imap_port, "bench@example.test", messages, 2)
        rows.append((f"APPEND {args.appends} msgs, 2 connections (msg/s; Correio "
                     f"{correio_mode}, Dovecot {dovecot_mode})", correio_rate, dovecot_rate,
                     "Dovecot"))
    print(f"{'what':<78} {'Correio':>9} {'reference':>10}  ratio")
    for what, ours, theirs, name in rows:
        print(f"{what:<78} {ours:9.0f} {theirs:9.0f}  {ours / theirs:.2f}x {name}")


if __name__ == "__main__":
    main()
