"""IMAP next to the other doors, all real listeners on loopback: IDLE wakes up when mail comes
in through the SMTP listener, an IMAP session sees the deletions a POP3 session commits at QUIT,
and ``manage.py runimap`` serves IMAP (STARTTLS port and IMAPS) as a process of its own."""

import imaplib
import os
import poplib
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import imapclient
import pytest

from mailcore.models import Message
from mailcore.protocols.common.config import ListenerConfig
from mailcore.protocols.pop3 import server as pop3_server
from mailcore.protocols.smtp import server as smtp_server
from mailcore.services import delivery
from tests.conftest import PASSWORD
from tests.factories import make_message
from tests.imap.conftest import ADDRESS
from tests.listeners import run_listener

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def smtp_port(mailbox):
    config = ListenerConfig(smtp_addr=("127.0.0.1", 0), hostname="mx.example.test")
    with run_listener(lambda: smtp_server.start_servers(config)) as listener:
        yield listener.port


@pytest.fixture
def pop3_port(mailbox):
    config = ListenerConfig(pop3_addr=("127.0.0.1", 0), hostname="pop.example.test")
    with run_listener(lambda: pop3_server.start_servers(config)) as listener:
        yield listener.port


def test_idle_wakes_up_within_a_second_of_delivery_through_the_smtp_listener(imap, smtp_port):
    client = imapclient.IMAPClient("127.0.0.1", port=imap.ports[0], ssl=False, timeout=20)
    client.login(ADDRESS, PASSWORD)
    assert client.select_folder("INBOX")[b"EXISTS"] == 0
    client.idle()
    try:
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=20) as smtp:
            smtp.sendmail("alice@remote.test", [ADDRESS],
                          make_message(subject="through SMTP", to=ADDRESS))
        sent = time.monotonic()
        responses = client.idle_check(timeout=5)
        woke = time.monotonic() - sent
    finally:
        client.idle_done()
    assert (1, b"EXISTS") in responses
    assert woke < 1.0, woke
    fetched = client.fetch([1], ["ENVELOPE"])
    assert fetched[1][b"ENVELOPE"].subject == b"through SMTP"
    client.logout()


def test_an_imap_session_sees_what_pop3_deleted_at_quit(imap, pop3_port, mailbox):
    for n in range(1, 4):
        delivery.deliver_to_mailboxes(make_message(subject=f"pop {n}"), [mailbox.pk])
    session = imaplib.IMAP4("127.0.0.1", imap.ports[0], timeout=20)
    session.login(ADDRESS, PASSWORD)
    assert session.select("INBOX") == ("OK", [b"3"])

    pop = poplib.POP3("127.0.0.1", pop3_port, timeout=20)
    pop.user(ADDRESS)
    pop.pass_(PASSWORD)
    pop.dele(2)
    typ, _ = session.noop()  # nothing is deleted before QUIT (RFC 1939 §6)
    assert "EXPUNGE" not in session.untagged_responses
    pop.quit()

    time.sleep(0.2)
    session.noop()
    assert session.untagged_responses.pop("EXPUNGE", None) == [b"2"]
    typ, data = session.uid("FETCH", "1:*", "(UID)")
    assert [item.decode() for item in data] == ["1 (UID 1)", "2 (UID 3)"]
    assert list(Message.objects.filter(folder__name="INBOX").values_list("uid", flat=True)
                .order_by("uid")) == [1, 3]
    session.logout()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def connect(port: int, deadline: float) -> imaplib.IMAP4:
    while True:
        try:
            return imaplib.IMAP4("127.0.0.1", port, timeout=10)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.slow
def test_runimap_serves_starttls_and_imaps_as_its_own_process(tmp_path):
    imap_port, imaps_port = free_port(), free_port()
    env = {
        key: value for key, value in os.environ.items()
        if key not in ("REDIS_URL", "CELERY_BROKER_URL", "CORREIO_TEST_DATABASE")
    }
    env.update(
        CORREIO_VAR_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        CORREIO_IMAP_ADDR=f"127.0.0.1:{imap_port}",
        CORREIO_IMAPS_ADDR=f"127.0.0.1:{imaps_port}",
    )

    def manage(*args, **kwargs):
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                              check=True, capture_output=True, timeout=120, **kwargs)

    manage("migrate", "--noinput", "-v0")
    manage("makecert")
    manage("createdomain", "example.test")
    manage("createmailbox", "demo@example.test", "--password", "pw for demo")
    script = (
        "from mailcore.services import delivery; import sys; "
        "delivery.deliver_message(sys.stdin.buffer.read(), ['demo@example.test'])"
    )
    manage("shell", "-c", script, input=make_message(subject="hello from runimap"))
    server = subprocess.Popen([sys.executable, "manage.py", "runimap"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        client = connect(imap_port, time.monotonic() + 30)
        assert "STARTTLS" in client.capabilities
        client.login("demo@example.test", "pw for demo")  # loopback: plaintext allowed
        assert client.select("INBOX") == ("OK", [b"1"])
        typ, data = client.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"Subject: hello from runimap" in data[0][1]
        client.logout()
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # makecert's certificate is self-signed
        secure = imaplib.IMAP4_SSL("127.0.0.1", imaps_port, ssl_context=context, timeout=10)
        secure.login("demo@example.test", "pw for demo")
        assert secure.status("INBOX", "(MESSAGES UNSEEN)")[1] == [
            b'"INBOX" (MESSAGES 1 UNSEEN 1)'
        ]
        secure.logout()
        with pytest.raises(imaplib.IMAP4.error):
            connect(imap_port, time.monotonic() + 10).login("demo@example.test", "wrong")
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=30)[0].decode()
    assert server.returncode == 0, output
