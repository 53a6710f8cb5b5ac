"""SMTP intake benchmark: 5,000 messages of ~5 KB over 10 concurrent connections into a real
``manage.py runsmtp`` process, storing durably.

Prints messages/s, the p50/p95/p99 latency from the end of DATA (the final ``.``) to the 250
reply, and the server's CPU time per message (user + system of the runsmtp process, from
``/proc``): on a shared machine the latency swings with the load, the CPU per message much
less, and at 10 connections into one process the latency is about ten times it. Runs on SQLite in a temporary CORREIO_VAR_DIR by default; ``--postgres URL`` runs it on a
fresh temporary database created on that PostgreSQL server (and dropped afterwards).

    .venv/bin/python bench/smtp_in.py [--messages 5000] [--connections 10] [--postgres URL]
        [--no-sender-auth]

Messages are DKIM-signed (RSA-2048) beforehand, and sender authentication (SPF, DKIM, DMARC:
mailcore/trust) runs against a local resolver, Debian's dnsmasq started here, serving the SPF,
DKIM and DMARC records of remote.test (``--no-sender-auth`` turns
the checks off, for the before/after comparison of issue 14).

The bar (ARCHITECTURE.md figures, issue 3): Postfix accepts about 360 such messages/s here."""

import argparse
import asyncio
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
RECIPIENT = "bench@example.test"
LINE = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n"


def make_message(index: int, size: int) -> bytes:
    head = (
        f"From: Sender <sender{index % 50}@remote.test>\r\n"
        f"To: {RECIPIENT}\r\n"
        f"Subject: benchmark message {index}\r\n"
        f"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n"
        f"Message-ID: <bench-{index}@remote.test>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    ).encode()
    body = LINE * max(1, (size - len(head)) // len(LINE))
    return head + body


SIGNED: dict[int, bytes] = {}


def dkim_key() -> tuple[bytes, str]:
    """A fresh RSA-2048 key: (private PEM, the p= of its DKIM record)."""
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, base64.b64encode(der).decode()


def sign_all(messages: int, size: int, pem: bytes) -> None:
    """DKIM-sign every message before the clock starts (as remote.test's own server would)."""
    import dkim

    for index in range(messages):
        raw = make_message(index, size)
        SIGNED[index] = dkim.sign(raw, b"bench", b"remote.test", pem,
                                  include_headers=[b"from", b"to", b"subject", b"date"]) + raw


async def client(port: int, indexes: list[int], size: int, latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def reply() -> bytes:
        while True:
            line = await reader.readline()
            if not line:
                raise ConnectionError("server closed the connection")
            if line[3:4] != b"-":
                return line

    assert (await reply()).startswith(b"220")
    writer.write(b"EHLO bench.remote.test\r\n")
    assert (await reply()).startswith(b"250")
    for index in indexes:
        data = SIGNED.get(index) or make_message(index, size)
        # RFC 2920: MAIL, RCPT and DATA go in one packet.
        writer.write(
            f"MAIL FROM:<sender@remote.test> SIZE={len(data)}\r\nRCPT TO:<{RECIPIENT}>\r\nDATA\r\n"
            .encode()
        )
        for expected in (b"250", b"250", b"354"):
            line = await reply()
            if not line.startswith(expected):
                raise RuntimeError(f"unexpected reply {line!r}")
        writer.write(data + b".\r\n")
        start = time.perf_counter()
        await writer.drain()
        line = await reply()
        latencies.append(time.perf_counter() - start)
        if not line.startswith(b"250"):
            raise RuntimeError(f"message {index} refused: {line!r}")
    writer.write(b"QUIT\r\n")
    await reply()
    writer.close()


async def send_all(port: int, messages: int, connections: int, size: int):
    latencies: list[float] = []
    shares = [list(range(i, messages, connections)) for i in range(connections)]
    start = time.perf_counter()
    await asyncio.gather(*(client(port, share, size, latencies) for share in shares))
    return time.perf_counter() - start, latencies


def start_server(env: dict) -> tuple[subprocess.Popen, int]:
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runsmtp"],
        cwd=ROOT,
        # Only the MX: a submission port's fixed default may be taken by another run.
        env={**env, "CORREIO_SMTP_ADDR": "127.0.0.1:0", "CORREIO_SUBMISSION_ADDR": "",
             "CORREIO_SUBMISSIONS_ADDR": ""},
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        line = server.stderr.readline()
        if not line:
            break
        match = re.search(r"listening on \('127\.0\.0\.1', (\d+)\)", line)
        if match:
            # Keep reading its log so that a full pipe never blocks the server.
            threading.Thread(target=server.stderr.read, daemon=True).start()
            return server, int(match.group(1))
    server.kill()
    raise RuntimeError("runsmtp did not start")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def create_pg_database(url: str) -> tuple[str, str]:
    import psycopg

    name = f"correio_bench_smtp_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}")), name


def drop_pg_database(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--size", type=int, default=5 * 1024)
    parser.add_argument("--postgres", metavar="URL", help="run on a temporary PostgreSQL database")
    parser.add_argument("--no-sender-auth", action="store_true",
                        help="turn SPF/DKIM/DMARC verification off")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.trust.dnsserver import DnsServer, Zone

    pem, public = dkim_key()
    dns_server = DnsServer(Zone(txt=[
        ("remote.test", "v=spf1 ip4:127.0.0.1 -all"),
        ("_dmarc.remote.test", "v=DMARC1; p=reject"),
        ("bench._domainkey.remote.test", f"v=DKIM1; k=rsa; p={public}"),
    ]), ttl=300)  # records live 5 minutes, as real ones do (and our resolver caches them)
    sign_all(args.messages, args.size, pem)

    var_dir = tempfile.mkdtemp(prefix="correio-bench-smtp-")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(CORREIO_VAR_DIR=var_dir, CORREIO_LOG_LEVEL="INFO", CORREIO_IMAP_ADDR="",
               CORREIO_DNS_NAMESERVERS=dns_server.address,
               CORREIO_SENDER_AUTH="0" if args.no_sender_auth else "1")
    pg_name = None
    if args.postgres:
        env["DATABASE_URL"], pg_name = create_pg_database(args.postgres)
    os.environ.clear()
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webmail.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections

    from mailcore.models import Message
    from mailcore.services import accounts

    server = None
    try:
        call_command("migrate", verbosity=0)
        accounts.create_domain("example.test")
        accounts.create_mailbox(RECIPIENT, None, quota=0)
        connections.close_all()
        server, port = start_server(env)
        cpu_before = cpu_seconds(server.pid)
        elapsed, latencies = asyncio.run(
            send_all(port, args.messages, args.connections, args.size)
        )
        cpu_after = cpu_seconds(server.pid)
        stored = Message.objects.filter(mailbox__address=RECIPIENT).count()
        latencies.sort()
        version = connection.pg_version if pg_name else 0
        database = f"PostgreSQL {version // 10000}.{version % 10000}" if pg_name else "SQLite (WAL, FULL)"
        checks = "off" if args.no_sender_auth else "on (dnsmasq on loopback)"
        print(f"sender authentication: {checks}")
        print(f"SMTP intake on {database}: {args.messages} messages of "
              f"{len(make_message(0, args.size))} bytes over {args.connections} connections")
        print(f"  {args.messages / elapsed:.0f} messages/s ({elapsed:.1f} s)")
        print(f"  end of DATA -> 250: p50 {1000 * statistics.median(latencies):.1f} ms, "
              f"p95 {1000 * latencies[int(0.95 * (len(latencies) - 1))]:.1f} ms, "
              f"p99 {1000 * latencies[int(0.99 * (len(latencies) - 1))]:.1f} ms")
        if cpu_before is not None and cpu_after is not None:
            print(f"  server CPU per message: {1000 * (cpu_after - cpu_before) / args.messages:.2f} ms")
        print(f"  stored: {stored}")
        if stored != args.messages:
            raise SystemExit(f"expected {args.messages} stored messages, found {stored}")
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
        connections.close_all()
        if pg_name:
            drop_pg_database(args.postgres, pg_name)
        shutil.rmtree(var_dir, ignore_errors=True)
        dns_server.stop()


if __name__ == "__main__":
    main()
