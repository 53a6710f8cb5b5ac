"""Issue 12 on ManageSieve: the login deadline runs from the connection's start; NOOP and
CAPABILITY do not extend it."""

import time

import pytest

from tests.managesieve.conftest import Raw

pytestmark = pytest.mark.django_db(transaction=True)


def test_noop_does_not_extend_the_login_deadline(start_managesieve):
    listener = start_managesieve(preauth_timeout=1.0)
    client = Raw(listener.port)
    assert client.read_reply().endswith(b"\r\n")  # capabilities and OK
    started = time.monotonic()
    replies = []
    while time.monotonic() - started < 5:
        reply = client.command(b"NOOP\r\n")
        replies.append(reply)
        if not reply.startswith(b"OK"):
            break
        time.sleep(0.2)
    assert 0.8 < time.monotonic() - started < 3
    assert replies[-1] == b"" or replies[-1].startswith(b"BYE")
    client.close()
