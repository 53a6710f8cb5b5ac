"""``manage.py runpop3`` as a real process: it serves POP3 with STLS and POP3S from the settings,
shares its maildrop lock with any other process through the database, and stops on SIGTERM."""

import os
import poplib
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mailcore.protocols.common import runner
from tests.factories import make_message

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def connect(port: int, deadline: float) -> poplib.POP3:
    while True:
        try:
            return poplib.POP3("127.0.0.1", port, timeout=10)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_runmail_includes_pop3():
    assert "pop3" in runner.PROTOCOLS


@pytest.mark.slow
def test_runpop3_serves_both_ports_and_shares_the_lock_across_processes(tmp_path):
    pop3_port, pop3s_port = free_port(), free_port()
    env = {
        key: value for key, value in os.environ.items()
        if key not in ("REDIS_URL", "CELERY_BROKER_URL", "CORREIO_TEST_DATABASE")
    }
    env.update(
        CORREIO_VAR_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        CORREIO_POP3_ADDR=f"127.0.0.1:{pop3_port}",
        CORREIO_POP3S_ADDR=f"127.0.0.1:{pop3s_port}",
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
    manage("shell", "-c", script, input=make_message(subject="hello"))
    server = subprocess.Popen([sys.executable, "manage.py", "runpop3"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        client = connect(pop3_port, time.monotonic() + 30)
        assert "STLS" in client.capa()
        client.user("demo@example.test")
        client.pass_("pw for demo")
        assert client.stat()[0] == 1
        # Another process (a second runpop3, or runmail) must see this session's lock.
        holder = "from mailcore.services import pop3; pop3.open_maildrop(1)"
        locked = subprocess.run([sys.executable, "manage.py", "shell", "-c", holder], cwd=ROOT,
                                env=env, capture_output=True, timeout=120)
        assert b"MaildropLocked" in locked.stderr
        client.quit()
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # makecert's certificate is self-signed
        secure = poplib.POP3_SSL("127.0.0.1", pop3s_port, context=context, timeout=10)
        secure.user("demo@example.test")
        secure.pass_("pw for demo")
        assert secure.retr(1)[1][2] == b"Subject: hello"
        secure.quit()
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=30)[0].decode()
    assert server.returncode == 0, output
