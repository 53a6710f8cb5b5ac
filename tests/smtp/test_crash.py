"""No loss under a crash: ``manage.py runsmtp`` is killed with SIGKILL while 20 clients send;
every message that got 250 must be in the mailbox exactly once (ARCHITECTURE.md "No loss")."""

import os
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from mailcore.models import Folder, Message
from tests.factories import make_message

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 20


def database_url() -> str:
    """The URL of the database this test runs on, for the listener process."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(settings['NAME']).resolve()}"
    user = quote(settings["USER"] or "")
    password = f":{quote(settings['PASSWORD'])}" if settings["PASSWORD"] else ""
    host = settings["HOST"] or "127.0.0.1"
    port = f":{settings['PORT']}" if settings["PORT"] else ""
    return f"postgres://{user}{password}@{host}{port}/{settings['NAME']}"


def start_runsmtp() -> tuple[subprocess.Popen, int]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CORREIO_SMTP_ADDR": "127.0.0.1:0",
        # Only the MX: the submission ports' fixed defaults may be taken by another run on
        # this machine, and a failed bind stops runsmtp.
        "CORREIO_SUBMISSION_ADDR": "",
        "CORREIO_SUBMISSIONS_ADDR": "",
        "CORREIO_TLS_CERT": "",
        "CORREIO_TLS_KEY": "",
    }
    env.pop("CORREIO_TEST_DATABASE", None)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runsmtp"], cwd=ROOT, env=env,
        stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        match = re.search(r"listening on \('127\.0\.0\.1', (\d+)\)", line)
        if match:
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return process, int(match.group(1))
    process.kill()
    raise AssertionError("runsmtp did not start")


def test_every_acknowledged_message_survives_a_sigkill_exactly_once(make_mailbox):
    box = make_mailbox("crash@example.test")
    connection.close()  # the listener process needs the database to itself for writing
    process, port = start_runsmtp()
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(number: int) -> None:
        sent = 0
        while not stop.is_set():
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                    while not stop.is_set():
                        message_id = f"<crash-{number}-{sent}@remote.test>"
                        sent += 1
                        smtp.sendmail(
                            "s@remote.test", ["crash@example.test"],
                            make_message(subject=f"crash {number}", message_id=message_id,
                                         body="x" * 2000 + "\n"),
                        )
                        with lock:
                            acknowledged.append(message_id)
            except (OSError, smtplib.SMTPException):
                return  # the server died: whatever was not acknowledged may be lost

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.time() + 60
        while len(acknowledged) < 150 and time.time() < deadline:
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)
    finally:
        stop.set()
        if process.poll() is None:
            process.kill()
        for thread in threads:
            thread.join(30)
    assert len(acknowledged) >= 150
    stored = Counter(Message.objects.filter(mailbox=box).values_list("message_id", flat=True))
    missing = [mid for mid in acknowledged if stored[mid] != 1]
    assert missing == []
    # Nothing is stored twice, acknowledged or not, and the folder's counters are exact.
    assert max(stored.values()) == 1
    inbox = Folder.objects.get(mailbox=box, role="inbox")
    uids = sorted(Message.objects.filter(folder=inbox).values_list("uid", flat=True))
    assert uids == list(range(1, len(uids) + 1))
    assert inbox.message_count == len(uids) and inbox.uidnext == len(uids) + 1

    # The store is usable at once by a restarted listener.
    process, port = start_runsmtp()
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.sendmail("s@remote.test", ["crash@example.test"],
                          make_message(message_id="<after-crash@remote.test>"))
        assert Message.objects.filter(message_id="<after-crash@remote.test>").count() == 1
    finally:
        process.terminate()
        process.wait(30)
