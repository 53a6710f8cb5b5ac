"""Bounded work (ARCHITECTURE.md): message size, recipients, line length, connections, idle and
session time, errors and commands per session, each refused with the protocol's reply."""

import smtplib
import time

import pytest

from mailcore.models import Message
from mailcore.protocols.smtp.policy import SMTPLimits
from tests.factories import make_message
from tests.smtp.conftest import Wire, stored

pytestmark = pytest.mark.django_db(transaction=True)


def connect(port: int) -> Wire:
    client = Wire(port)
    assert client.reply().startswith("220 ")
    assert client.cmd("EHLO client.remote.test").startswith("250-")
    return client


def start_data(client: Wire, to="demo@example.test") -> None:
    assert client.cmd("MAIL FROM:<a@remote.test>") == "250 2.1.0 OK"
    assert client.cmd(f"RCPT TO:<{to}>") == "250 2.1.5 OK"
    assert client.cmd("DATA").startswith("354")


def test_a_declared_size_over_the_limit_is_refused_at_mail_with_552_5_3_4(start_smtp, local):
    client = connect(start_smtp(max_message_size=10_000).port)
    assert client.cmd("MAIL FROM:<a@remote.test> SIZE=10001").startswith("552 5.3.4")
    assert client.cmd("MAIL FROM:<a@remote.test> SIZE=10000") == "250 2.1.0 OK"


def test_data_over_the_size_limit_gets_552_5_3_4_and_nothing_is_stored(start_smtp, local):
    client = connect(start_smtp(max_message_size=10_000).port)
    start_data(client)
    client.send(b"Subject: big\r\n\r\n" + b"y" * 70 + b"\r\n" * 1 + (b"z" * 78 + b"\r\n") * 200)
    client.send(b".\r\n")
    assert client.reply().startswith("552 5.3.4")
    assert Message.objects.count() == 0
    # The session is usable afterwards.
    start_data(client)
    assert client.cmd(b"Subject: small\r\n\r\nok\r\n.").startswith("250 ")


def test_smtplib_sees_its_oversize_message_refused(start_smtp, local):
    port = start_smtp(max_message_size=5_000).port
    with smtplib.SMTP("127.0.0.1", port) as client, pytest.raises(smtplib.SMTPSenderRefused) as err:
        # smtplib declares SIZE= itself, so the refusal comes at MAIL.
        client.sendmail("a@remote.test", ["demo@example.test"], make_message(body="b" * 6000))
    assert err.value.smtp_code == 552


def test_the_101st_recipient_gets_452_4_5_3(port, local):
    client = connect(port)
    client.cmd("MAIL FROM:<a@remote.test>")
    replies = [client.cmd(f"RCPT TO:<demo+{n}@example.test>") for n in range(101)]
    assert replies[:100] == ["250 2.1.5 OK"] * 100
    assert replies[100].startswith("452 4.5.3")
    client.cmd("DATA")
    assert client.cmd(b"Subject: many\r\n\r\nhi\r\n.").startswith("250 ")
    # 100 addresses of one mailbox: delivered once.
    assert len(stored("demo@example.test")) == 1


def test_a_command_line_over_512_octets_gets_500_5_5_2(port, local):
    client = connect(port)
    assert client.cmd("NOOP " + "x" * 600).startswith("500 5.5.2")
    assert client.cmd("NOOP " + "x" * 5000).startswith("500 5.5.2")
    assert client.cmd("NOOP") == "250 2.0.0 OK"


def test_a_data_line_of_998_characters_is_accepted(port, local):
    client = connect(port)
    start_data(client)
    line = b"a" * 998
    assert client.cmd(b"Subject: wide\r\n\r\n" + line + b"\r\n.").startswith("250 ")
    assert line in stored("demo@example.test")[0]


def test_a_data_line_over_1000_octets_gets_500_5_5_2_and_nothing_is_stored(port, local):
    client = connect(port)
    for length in (1000, 5000, 100_000):
        start_data(client)
        reply = client.cmd(b"Subject: too wide\r\n\r\n" + b"a" * length + b"\r\nmore\r\n.")
        assert reply.startswith("500 5.5.2"), length
    assert Message.objects.count() == 0
    start_data(client)
    assert client.cmd(b"Subject: fine\r\n\r\nok\r\n.").startswith("250 ")


def test_connections_over_the_per_ip_limit_get_421(start_smtp, local):
    port = start_smtp(max_connections_per_ip=2).port
    first, second = Wire(port), Wire(port)
    assert first.reply().startswith("220 ") and second.reply().startswith("220 ")
    third = Wire(port)
    assert third.reply().startswith("421 4.7.0 ")
    assert third.closed()
    first.cmd("QUIT")
    time.sleep(0.2)
    fourth = Wire(port)
    assert fourth.reply().startswith("220 ")


def test_connections_over_the_total_limit_get_421(start_smtp, local):
    port = start_smtp(max_connections=1).port
    first = Wire(port)
    assert first.reply().startswith("220 ")
    second = Wire(port)
    assert second.reply().startswith("421 4.7.0 ")


def test_an_idle_client_is_dropped_with_421_4_4_2(start_smtp, local):
    client = connect(start_smtp(limits=SMTPLimits(idle_timeout=0.5)).port)
    time.sleep(1.0)
    assert client.reply().startswith("421 4.4.2 ")
    assert client.closed()


def test_a_session_is_bounded_in_time_even_if_the_client_keeps_talking(start_smtp, local):
    client = connect(start_smtp(limits=SMTPLimits(session_timeout=1.0)).port)
    deadline = time.time() + 5
    with pytest.raises(ConnectionError) as err:
        while time.time() < deadline:
            reply = client.cmd("NOOP")
            if reply.startswith("421"):
                raise ConnectionError(reply)
            time.sleep(0.1)
    assert "421 4.4.2" in str(err.value)


def test_a_slow_but_steady_data_transfer_is_not_cut_by_the_idle_timer(start_smtp, local):
    client = connect(start_smtp(limits=SMTPLimits(idle_timeout=1.0)).port)
    start_data(client)
    client.send(b"Subject: slow\r\n\r\n")
    for _ in range(8):
        time.sleep(0.3)
        client.send(b"a line of the slow message\r\n")
    assert client.cmd(b".").startswith("250 ")


def test_a_client_collecting_too_many_errors_is_cut_off_with_421(start_smtp, local):
    client = connect(start_smtp(limits=SMTPLimits(max_errors=5)).port)
    client.cmd("MAIL FROM:<a@remote.test>")
    replies = [client.cmd(f"RCPT TO:<guess{n}@example.test>") for n in range(4)]
    assert all(reply.startswith("550 5.1.1") for reply in replies)
    assert client.cmd("RCPT TO:<guess5@example.test>").startswith("550 5.1.1")
    assert client.reply() == "421 4.7.0 mail.example.test Error: too many errors"
    assert client.closed()


def test_garbage_commands_get_the_client_cut_off(port, local):
    client = connect(port)
    with pytest.raises(ConnectionError):
        for _ in range(30):
            client.cmd("\x01\x02 garbage")
    assert Message.objects.count() == 0


def test_junk_commands_are_capped_per_session(start_smtp, local):
    client = connect(start_smtp(limits=SMTPLimits(max_junk_commands=10)).port)
    replies = [client.cmd("NOOP") for _ in range(10)]
    assert replies == ["250 2.0.0 OK"] * 10
    assert client.cmd("NOOP").startswith("421 4.7.0")
    assert client.closed()


def test_pipelined_junk_cannot_make_the_server_buffer_replies_forever(port, local):
    client = connect(port)
    client.send(b"NOOP\r\n" * 50 + b"QUIT\r\n")
    replies = [client.reply() for _ in range(51)]
    assert replies[:50] == ["250 2.0.0 OK"] * 50 and replies[50] == "221 2.0.0 Bye"
