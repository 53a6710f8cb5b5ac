"""The implicit-TLS doors (IMAPS, POP3S, submissions on 465) count a connection before its TLS
handshake and bound the handshakes in progress, per client address and in total, with a
deadline (issue 12; mailcore/protocols/common/implicit_tls.py). Real sockets, real TLS."""

import contextlib
import smtplib
import socket
import ssl
import time

import pytest
import trustme

from mailcore.protocols.common.config import ListenerConfig
from mailcore.protocols.imap.server import start_servers as start_imap
from mailcore.protocols.pop3.server import start_servers as start_pop3
from mailcore.protocols.smtp.server import start_submission_servers
from tests.conftest import PASSWORD
from tests.listeners import run_listener

pytestmark = pytest.mark.django_db(transaction=True)

ADDRESS = "demo@example.test"
# A TLS record header and the start of a ClientHello: the server waits for the rest.
HALF_HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
DOORS = ("imaps", "pop3s", "submissions")
GREETINGS = {"imaps": b"* OK", "pop3s": b"+OK", "submissions": b"220 "}


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
def client_context(ca):
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
def start_doors(ca, tmp_path, mailbox):
    """``start_doors(**ListenerConfig fields)``: IMAPS, POP3S and 465 on one loop; returns
    their ports by name."""
    cert = ca.issue_cert("127.0.0.1", "mail.example.test")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    stack = contextlib.ExitStack()

    def start(**overrides):
        config = ListenerConfig(
            hostname="mail.example.test", tls_cert=str(cert_path), tls_key=str(key_path),
            imaps_addr=("127.0.0.1", 0), pop3s_addr=("127.0.0.1", 0),
            submissions_addr=("127.0.0.1", 0), **overrides,
        )

        async def servers():
            return [*await start_imap(config), *await start_pop3(config),
                    *await start_submission_servers(config)]

        listener = stack.enter_context(run_listener(servers))
        return dict(zip(DOORS, listener.ports, strict=True))

    with stack:
        yield start


def half_open(port: int, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    sock.sendall(HALF_HELLO)
    return sock


def closed_at_once(port: int, source: str = "127.0.0.1") -> bool:
    """A connection the door closes without a byte (no handshake started, no plaintext)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10,
                                  source_address=(source, 0)) as sock:
        sock.sendall(HALF_HELLO)
        try:
            return sock.recv(100) == b""
        except ConnectionResetError:
            return True


def greeting(port: int, context: ssl.SSLContext, source: str = "127.0.0.1") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10,
                                  source_address=(source, 0)) as raw:
        with context.wrap_socket(raw, server_hostname="mail.example.test") as tls:
            return tls.recv(200)


def settle() -> None:
    time.sleep(0.3)  # the listener's loop has seen the connections (or their ends)


@pytest.mark.parametrize("door", DOORS)
def test_handshakes_in_progress_are_bounded_per_address(start_doors, client_context, door):
    port = start_doors(max_tls_handshakes_per_ip=2)[door]
    stalled = [half_open(port) for _ in range(2)]
    settle()
    assert closed_at_once(port)  # a third handshake from the same address
    # Another address still gets its handshake and the door's greeting.
    assert greeting(port, client_context, source="127.0.0.2").startswith(GREETINGS[door])
    for sock in stalled:
        sock.close()
    settle()
    assert greeting(port, client_context).startswith(GREETINGS[door])


@pytest.mark.parametrize("door", DOORS)
def test_handshakes_in_progress_are_bounded_in_total(start_doors, client_context, door):
    port = start_doors(max_tls_handshakes=3)[door]
    stalled = [half_open(port, f"127.0.0.{i}") for i in (2, 3, 4)]
    settle()
    assert closed_at_once(port, "127.0.0.5")
    stalled.pop().close()
    settle()
    assert greeting(port, client_context, source="127.0.0.5").startswith(GREETINGS[door])
    for sock in stalled:
        sock.close()


@pytest.mark.parametrize("door", DOORS)
def test_a_stalled_handshake_is_cut_at_its_deadline_and_frees_its_slots(
    start_doors, client_context, door
):
    port = start_doors(tls_handshake_timeout=0.5, max_connections_per_ip=1)[door]
    stalled = half_open(port)
    settle()
    assert closed_at_once(port)  # the one connection this address may hold is taken
    started = time.monotonic()
    try:
        assert stalled.recv(100) == b""  # the server ends it
    except ConnectionResetError:
        pass
    assert time.monotonic() - started < 5
    stalled.close()
    settle()
    assert greeting(port, client_context).startswith(GREETINGS[door])


@pytest.mark.parametrize("door", DOORS)
def test_connections_are_counted_before_the_handshake(start_doors, client_context, door):
    port = start_doors(max_connections_per_ip=2)[door]
    # Two clients that connect and never say anything hold both of this address's slots.
    idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
    settle()
    assert closed_at_once(port)
    for sock in idle:
        sock.close()
    settle()
    assert greeting(port, client_context).startswith(GREETINGS[door])


def test_submission_on_465_still_serves_a_whole_session(start_doors, client_context):
    from mailcore.models import OutboundMessage

    port = start_doors(max_connections_per_ip=2)["submissions"]
    for _ in range(3):  # each session's connection is released when it ends
        with smtplib.SMTP_SSL("127.0.0.1", port, context=client_context, timeout=10) as client:
            client.login(ADDRESS, PASSWORD)
            refused = client.sendmail(ADDRESS, ["someone@remote.test"],
                                      f"From: {ADDRESS}\r\nSubject: over 465\r\n\r\nhello\r\n".encode())
            assert refused == {}
    assert OutboundMessage.objects.count() == 3


def test_a_flood_of_aborted_handshakes_logs_a_burst_then_a_count(start_doors, caplog):
    import logging

    port = start_doors(max_tls_handshakes_per_ip=100)["submissions"]
    with caplog.at_level(logging.INFO, logger="correio.smtp"):
        for _ in range(30):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"\x16\x03\x01\x00\x05hello")  # a broken ClientHello
                sock.recv(100)
        settle()
    lines = [r.getMessage() for r in caplog.records if r.name == "correio.smtp"]
    assert len(lines) == 20 and all("ended" in line for line in lines)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
