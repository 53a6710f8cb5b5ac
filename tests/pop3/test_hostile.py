"""Issue 12 on the POP3 listeners: a login deadline that NOOP and CAPA do not extend, connection
limits counted before the TLS handshake on POP3S, and quiet logs for client TLS aborts."""

import logging
import socket
import ssl
import time

import pytest

from tests.conftest import PASSWORD
from tests.pop3.wire import RawClient

pytestmark = pytest.mark.django_db(transaction=True)


def greeted(port: int) -> RawClient:
    wire = RawClient(port)
    assert wire.line().startswith(b"+OK")
    return wire


def test_noop_and_capa_do_not_extend_the_login_deadline(start_pop3, mailbox):
    server = start_pop3(config={"preauth_timeout": 1.0})
    wire = greeted(server.port)
    started = time.monotonic()
    with pytest.raises((ConnectionError, AssertionError, OSError)):
        while time.monotonic() - started < 5:
            # NOOP before login is -ERR (RFC 1939: TRANSACTION only), still a command answered.
            assert wire.command(b"NOOP").startswith(b"-ERR")
            wire.send(b"CAPA\r\n")
            while wire.line() != b".\r\n":
                pass
            time.sleep(0.2)
    assert 0.8 < time.monotonic() - started < 3


def test_the_login_deadline_does_not_apply_once_logged_in(start_pop3, mailbox):
    server = start_pop3(config={"preauth_timeout": 1.0})
    wire = greeted(server.port)
    wire.command(b"USER demo@example.test")
    assert wire.command(b"PASS " + PASSWORD.encode()).startswith(b"+OK")
    time.sleep(1.5)
    assert wire.command(b"NOOP").startswith(b"+OK")
    assert wire.command(b"QUIT").startswith(b"+OK")


def test_pop3s_counts_connections_before_the_tls_handshake(start_pop3, tls, mailbox):
    server = start_pop3(pop3s=True, config={"max_connections_per_ip": 2})
    # Two clients that never start their handshake hold both slots.
    idle = [socket.create_connection(("127.0.0.1", server.tls_port)) for _ in range(2)]
    time.sleep(0.2)
    third = socket.create_connection(("127.0.0.1", server.tls_port), timeout=5)
    assert third.recv(100) == b""  # closed at once, no plaintext reply, no handshake
    for sock in idle:
        sock.close()
    time.sleep(0.2)
    context = tls.client_context()
    with socket.create_connection(("127.0.0.1", server.tls_port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="pop.example.test") as client:
            assert client.recv(100).startswith(b"+OK")


def test_a_client_tls_abort_on_pop3s_is_one_quiet_line(start_pop3, tls, mailbox, caplog):
    server = start_pop3(pop3s=True)
    with caplog.at_level(logging.INFO, logger="correio.pop3"):
        with socket.create_connection(("127.0.0.1", server.tls_port), timeout=5) as sock:
            sock.sendall(b"\x16\x03\x01\x00\x05hello")  # a broken ClientHello
            sock.recv(100)
        context = ssl.create_default_context()  # does not trust the test CA: aborts
        with socket.create_connection(("127.0.0.1", server.tls_port), timeout=5) as sock:
            with pytest.raises(ssl.SSLError):
                context.wrap_socket(sock, server_hostname="pop.example.test")
        time.sleep(0.3)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [r for r in caplog.records if r.exc_info]
    assert len([r for r in caplog.records if "ended" in r.getMessage()]) == 2
