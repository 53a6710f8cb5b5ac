"""backup while mail arrives over SMTP, restore into a fresh var/, read the mail over IMAP.

Real processes throughout: ``runmail`` receiving from a sending thread, ``manage.py backup``
beside it, ``manage.py restore`` into another folder and ``runmail`` there, imaplib reading."""

import imaplib
import os
import smtplib
import stat
import subprocess
import threading
import time
import uuid

import pytest

from tests.factories import make_message
from tests.ops.procs import ADDRESS, PASSWORD, Deployment, free_port, wait_port

pytestmark = pytest.mark.slow


class Sender(threading.Thread):
    """Sends numbered messages over one SMTP connection until stopped; ``acked`` is how many
    got their 250 (each is then committed, ARCHITECTURE.md "No loss")."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port = port
        self.acked = 0
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as client:
                while not self.stopping.is_set():
                    client.sendmail("a@remote.test", [ADDRESS],
                                    make_message(subject=f"number {self.acked}"))
                    self.acked += 1
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.error = error


def test_a_backup_taken_while_mail_arrives_restores_and_reads_over_imap(tmp_path):
    source = Deployment(tmp_path / "var")
    source.setup()
    smtp = free_port()
    proc = source.runmail(CORREIO_SMTP_ADDR=f"127.0.0.1:{smtp}")
    wait_port(smtp, proc)
    sender = Sender(smtp)
    sender.start()
    while sender.acked < 50 and sender.error is None:
        time.sleep(0.05)
    acked_before = sender.acked
    backup = tmp_path / "backup"
    out = source.manage("backup", str(backup)).stdout.decode()
    acked_after = sender.acked
    sender.stopping.set()
    sender.join(30)
    assert sender.error is None, sender.error
    assert "Backed up the sqlite database" in out
    assert stat.S_IMODE(backup.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in backup.rglob("*") if p.is_file())
    source.stop(proc)

    target = Deployment(tmp_path / "fresh-var")
    out = target.manage("restore", str(backup)).stdout.decode()
    assert "Restored the sqlite database" in out
    for name in ("secret_key", "tls/cert.pem", "tls/key.pem"):
        assert (target.var / name).read_bytes() == (source.var / name).read_bytes()
        assert stat.S_IMODE((target.var / name).stat().st_mode) == 0o600
    # A second restore over a database in use is refused.
    again = target.manage
    with pytest.raises(AssertionError, match="already holds a database"):
        again("restore", str(backup))

    imap = free_port()
    proc = target.runmail(CORREIO_IMAP_ADDR=f"127.0.0.1:{imap}")
    wait_port(imap, proc)
    client = imaplib.IMAP4("127.0.0.1", imap, timeout=30)
    client.login(ADDRESS, PASSWORD)
    status, data = client.select("INBOX", readonly=True)
    count = int(data[0])
    # Everything acknowledged before the backup began is in it, nothing after it ended.
    assert acked_before <= count <= acked_after
    status, data = client.uid("SEARCH", None, "ALL")
    uids = [int(u) for u in data[0].split()]
    assert uids == list(range(1, count + 1))
    status, data = client.fetch(str(count), "(BODY[HEADER.FIELDS (SUBJECT)] BODY[TEXT])")
    assert f"number {count - 1}".encode() in data[0][1]
    assert b"this is a test message" in data[1][1]
    client.logout()
    target.stop(proc)


def test_restore_refuses_a_damaged_backup(tmp_path):
    site = Deployment(tmp_path / "var")
    site.manage("migrate", "--noinput", "-v0")
    backup = tmp_path / "backup"
    site.manage("backup", str(backup))
    with open(backup / "correio.sqlite3", "r+b") as handle:
        handle.seek(5000)
        handle.write(b"\xff" * 16)
    fresh = Deployment(tmp_path / "fresh")
    with pytest.raises(AssertionError, match="missing or damaged"):
        fresh.manage("restore", str(backup))
    with pytest.raises(AssertionError, match="is not empty"):
        site.manage("backup", str(backup))


def _postgres_base() -> str | None:
    """The server of DATABASE_URL when it is PostgreSQL (the CI pass), else None."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return None
    return url.rsplit("/", 1)[0]


@pytest.mark.skipif(_postgres_base() is None, reason="the PostgreSQL pass (DATABASE_URL) runs it")
def test_postgresql_backup_goes_through_pg_dump_and_restores_into_an_empty_database(tmp_path):
    base = _postgres_base()
    names = [f"correio_bk_{uuid.uuid4().hex[:10]}_{side}" for side in ("src", "dst")]
    for name in names:
        subprocess.run(["psql", f"{base}/postgres", "-c", f"CREATE DATABASE {name}"],
                       check=True, capture_output=True)
    try:
        source = Deployment(tmp_path / "var", DATABASE_URL=f"{base}/{names[0]}")
        source.setup()
        script = (
            "import sys; from mailcore.services import delivery;"
            " [delivery.deliver_message(sys.stdin.buffer.read(), ['demo@example.test'])"
            " for _ in range(1)]"
        )
        source.manage("shell", "-c", script, input=make_message(subject="kept in pg"))
        backup = tmp_path / "backup"
        assert "postgresql database" in source.manage("backup", str(backup)).stdout.decode()
        assert (backup / "correio.pgdump").stat().st_size > 0
        target = Deployment(tmp_path / "fresh", DATABASE_URL=f"{base}/{names[1]}")
        target.manage("restore", str(backup))
        with pytest.raises(AssertionError, match="already has tables"):
            target.manage("restore", str(backup))
        imap = free_port()
        proc = target.runmail(CORREIO_IMAP_ADDR=f"127.0.0.1:{imap}")
        wait_port(imap, proc)
        client = imaplib.IMAP4("127.0.0.1", imap, timeout=30)
        client.login(ADDRESS, PASSWORD)
        client.select("INBOX", readonly=True)
        status, data = client.fetch("1", "(BODY[HEADER.FIELDS (SUBJECT)])")
        assert b"kept in pg" in data[0][1]
        client.logout()
        target.stop_all()
    finally:
        for name in names:
            subprocess.run(["psql", f"{base}/postgres", "-c",
                            f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], capture_output=True)
