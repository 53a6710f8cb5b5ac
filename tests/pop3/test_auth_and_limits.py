"""POP3 logins (USER/PASS, AUTH PLAIN), TLS (STLS, POP3S), the plaintext-password policy,
response codes [AUTH], [SYS/TEMP] and [IN-USE], and the limits on abusive clients."""

import base64
import poplib
import socket
import time

import pytest

from mailcore.models import MaildropLock, Message
from mailcore.protocols.common.config import ListenerConfig
from mailcore.protocols.pop3.server import start_servers, tls_or_loopback
from mailcore.services import pop3
from tests.conftest import PASSWORD
from tests.factories import make_message
from tests.listeners import run_listener
from tests.pop3.wire import RawClient

pytestmark = pytest.mark.django_db(transaction=True)


def plain(user: str, password: str, authzid: str = "") -> str:
    return base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()


def greeted(port: int) -> RawClient:
    wire = RawClient(port)
    assert wire.line().startswith(b"+OK")
    return wire


def test_wrong_passwords_get_the_auth_code_and_cut_the_connection_after_three(
    pop3_server, mailbox
):
    client = pop3_server.connect()
    for user in ("demo@example.test", "nobody@example.test"):
        client.user(user)
        with pytest.raises(poplib.error_proto, match=r"^b'-ERR \[AUTH\] authentication failed'"):
            client.pass_("wrong password")
    with pytest.raises(poplib.error_proto, match="send USER first"):
        client.pass_(PASSWORD)
    client.user("demo@example.test")
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\] authentication failed"):
        client.pass_("wrong again")
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\] too many failed logins"):
        client.noop()
    with pytest.raises((poplib.error_proto, OSError)):
        client.noop()


def test_the_shared_throttle_refuses_even_the_right_password(pop3_server, mailbox, settings):
    settings.CORREIO_AUTH_MAX_FAILURES = 2
    for _ in range(2):
        client = pop3_server.connect()
        client.user("demo@example.test")
        with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
            client.pass_("wrong")
        client.quit()
    client = pop3_server.connect()
    client.user("demo@example.test")
    with pytest.raises(poplib.error_proto, match=r"\[SYS/TEMP\] too many failed logins"):
        client.pass_(PASSWORD)
    client.quit()


def test_auth_plain_with_an_initial_response_or_a_continuation(pop3_server, mailbox):
    wire = greeted(pop3_server.port)
    assert wire.command(b"AUTH") == b"+OK\r\n" and wire.multiline() == b"PLAIN\r\n.\r\n"
    assert wire.command(b"AUTH CRAM-MD5") == b"-ERR unsupported authentication mechanism\r\n"
    assert wire.command(b"AUTH PLAIN") == b"+ \r\n"
    assert wire.command(b"*") == b"-ERR authentication cancelled\r\n"
    assert wire.command(b"AUTH PLAIN =") == b"-ERR [AUTH] invalid SASL PLAIN response\r\n"
    response = plain("demo@example.test", PASSWORD, authzid="other@example.test").encode()
    assert wire.command(b"AUTH PLAIN " + response) == b"-ERR [AUTH] authentication failed\r\n"
    assert wire.command(b"AUTH PLAIN") == b"+ \r\n"
    response = plain("demo@example.test", PASSWORD).encode()
    assert wire.command(response) == b"+OK maildrop has 0 messages (0 octets)\r\n"
    assert wire.command(b"QUIT").startswith(b"+OK")
    wire = greeted(pop3_server.port)
    response = plain("demo@example.test", PASSWORD, authzid="demo@example.test").encode()
    assert wire.command(b"AUTH PLAIN " + response).startswith(b"+OK maildrop has 0")
    wire.close()


def test_sasl_lines_may_exceed_the_command_line_limit_but_commands_may_not(pop3_server, mailbox):
    wire = greeted(pop3_server.port)
    long_password = "p" * 600
    reply = wire.command(b"AUTH PLAIN " + plain("demo@example.test", long_password).encode())
    assert reply == b"-ERR [AUTH] authentication failed\r\n"
    assert wire.command(b"USER " + b"u" * 300) == b"-ERR line too long\r\n"
    assert wire.command(b"NOOP") == b"-ERR NOOP is not valid in this state\r\n"
    wire.send(b"X" * 100_000)
    assert wire.line() == b"-ERR line too long\r\n"
    assert wire.closed()


def test_plaintext_logins_wait_for_stls_when_the_connection_is_not_trusted(
    start_pop3, tls, mailbox
):
    """ARCHITECTURE.md: passwords only over TLS or from loopback. The decision is the
    listener's option; here loopback is not trusted, as a remote client would not be."""
    assert tls_or_loopback("127.0.0.1", False) and tls_or_loopback("::1", False)
    assert not tls_or_loopback("192.0.2.7", False) and tls_or_loopback("192.0.2.7", True)
    server = start_pop3(plaintext_allowed=lambda ip, is_tls: is_tls)
    client = server.connect()
    assert set(client.capa()) == {
        "TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE", "STLS", "IMPLEMENTATION"
    }
    refusal = r"\[AUTH\] plaintext authentication disallowed without TLS; use STLS"
    with pytest.raises(poplib.error_proto, match=refusal):
        client.user("demo@example.test")
    with pytest.raises(poplib.error_proto, match=refusal):
        client.pass_(PASSWORD)
    with pytest.raises(poplib.error_proto, match=refusal):
        client._shortcmd("AUTH PLAIN " + plain("demo@example.test", PASSWORD))
    assert client.stls(tls.client_context()) == b"+OK begin TLS negotiation"
    assert "USER" in client.capa() and "STLS" not in client.capa()
    client.user("demo@example.test")
    assert client.pass_(PASSWORD).startswith(b"+OK maildrop has 0 messages")
    client.quit()


def test_stls_refuses_commands_pipelined_before_the_handshake(pop3_server):
    wire = greeted(pop3_server.port)
    wire.send(b"STLS\r\nUSER injected@example.test\r\n")
    assert wire.line() == b"-ERR data after STLS; closing connection\r\n"
    assert wire.closed()


def test_pop3s_is_tls_from_the_first_byte(start_pop3, tls, deliver):
    raw = make_message(subject="over tls")
    deliver(raw)
    server = start_pop3(pop3s=True)
    client = poplib.POP3_SSL("127.0.0.1", server.tls_port, context=tls.client_context(),
                             timeout=10)
    assert "STLS" not in client.capa()
    with pytest.raises(poplib.error_proto, match="already using TLS"):
        client._shortcmd("STLS")
    client.user("demo@example.test")
    client.pass_(PASSWORD)
    assert b"".join(line + b"\r\n" for line in client.retr(1)[1]) == raw
    client.quit()


def test_without_a_certificate_there_is_no_stls_and_no_pop3s(start_pop3, mailbox):
    server = start_pop3(with_tls=False)
    client = server.connect()
    assert "STLS" not in client.capa()
    with pytest.raises(poplib.error_proto, match="TLS is not available"):
        client._shortcmd("STLS")
    client.quit()
    config = ListenerConfig(pop3_addr=None, pop3s_addr=("127.0.0.1", 0))
    with run_listener(lambda: start_servers(config)) as listener:
        assert listener.servers == []


def test_a_second_session_gets_in_use_until_the_first_quits(pop3_server, deliver):
    deliver(make_message())
    first = pop3_server.login()
    second = pop3_server.connect()
    second.user("demo@example.test")
    with pytest.raises(poplib.error_proto, match=r"^b'-ERR \[IN-USE\] maildrop is locked"):
        second.pass_(PASSWORD)
    assert "USER" in second.capa()  # still in AUTHORIZATION, free to try again
    first.quit()
    second.user("demo@example.test")
    assert second.pass_(PASSWORD).startswith(b"+OK maildrop has 1 messages")
    second.quit()


def test_a_live_session_renews_its_lock_and_a_dead_ones_lapses(start_pop3, mailbox):
    server = start_pop3(lease_seconds=0.6)
    first = server.login()
    time.sleep(1.5)  # well past one lease: the heartbeat must have renewed it
    second = server.connect()
    second.user("demo@example.test")
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
        second.pass_(PASSWORD)
    first.quit()
    second.quit()
    # A session whose process died: its lock is never renewed nor released.
    pop3.open_maildrop(mailbox.pk, lease_seconds=0.5, holder="crashed")
    client = server.connect()
    client.user("demo@example.test")
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
        client.pass_(PASSWORD)
    time.sleep(0.7)
    client.user("demo@example.test")
    assert client.pass_(PASSWORD).startswith(b"+OK")
    client.quit()
    assert not MaildropLock.objects.exists()


def test_a_session_that_lost_its_lock_deletes_nothing_at_quit(pop3_server, deliver, inbox):
    deliver(make_message())
    client = pop3_server.login()
    client.dele(1)
    MaildropLock.objects.all().delete()  # as if its lease had lapsed and been taken over
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\] some deleted messages not removed"):
        client.quit()
    assert Message.objects.filter(folder=inbox).count() == 1


def test_an_idle_session_is_closed_silently_without_update(start_pop3, deliver, inbox):
    deliver(make_message())
    server = start_pop3(idle_timeout=0.5)
    wire = greeted(server.port)
    wire.command(b"USER demo@example.test")
    wire.command(b"PASS " + PASSWORD.encode())
    assert wire.command(b"DELE 1") == b"+OK message 1 deleted\r\n"
    started = time.monotonic()
    assert wire.closed() and wire.buffer == b""  # RFC 1939 §3: no reply on autologout
    assert 0.4 < time.monotonic() - started < 5
    assert Message.objects.filter(folder=inbox).count() == 1
    client = server.login()  # and the lock went with it
    client.quit()


def test_garbage_commands_are_cut_off(pop3_server):
    wire = greeted(pop3_server.port)
    for _ in range(9):
        assert wire.command(b"HELO there") == b"-ERR unknown command\r\n"
    wire.send(b"\xff\xfe\r\n")
    assert wire.line() == b"-ERR command is not ASCII\r\n"
    assert wire.line() == b"-ERR too many bad commands; closing connection\r\n"
    assert wire.closed()


def test_connections_from_one_address_are_limited(start_pop3):
    server = start_pop3(config={"max_connections_per_ip": 2})
    first, second = greeted(server.port), greeted(server.port)
    third = RawClient(server.port)
    assert third.line() == b"-ERR [SYS/TEMP] too many connections; try again later\r\n"
    assert third.closed()
    first.command(b"QUIT")
    assert first.closed()
    time.sleep(0.1)
    greeted(server.port).close()
    second.close()


def test_a_client_that_stops_reading_is_cut_off_and_frees_the_maildrop(start_pop3, deliver):
    line = b"x" * 78 + b"\r\n"
    deliver(b"Subject: big\r\n\r\n" + line * 200_000)  # 16 MB: more than socket buffers hold
    server = start_pop3(idle_timeout=0.5)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", server.port))
    sock.sendall(b"USER demo@example.test\r\nPASS " + PASSWORD.encode() + b"\r\nRETR 1\r\n")
    sock.recv(100)
    time.sleep(2)  # never reads the message
    client = server.login()  # the stuck session was dropped and its lock released
    assert client.stat()[0] == 1
    client.quit()
    sock.close()


def test_a_server_side_failure_at_login_is_a_temporary_error(pop3_server, inbox):
    inbox.delete()  # an account left without its INBOX: the snapshot cannot be taken
    client = pop3_server.connect()
    client.user("demo@example.test")
    with pytest.raises(poplib.error_proto,
                       match=r"^b'-ERR \[SYS/TEMP\] temporary server error; try again later'"):
        client.pass_(PASSWORD)
    assert "USER" in client.capa()  # still in AUTHORIZATION
    client.quit()
    assert not MaildropLock.objects.exists()
