"""Odd credentials at every door: SMTP AUTH PLAIN's authorization identity is checked as IMAP
and POP3 check it, and credentials that are not UTF-8 are a failed login (NO, -ERR, 535, a form
error), never a traceback; UTF-8 passwords work everywhere."""

import base64
import socket

import pytest
from django.test import Client

from mailcore.models import LoginThrottle
from mailcore.services import accounts
from tests.conftest import PASSWORD
from tests.signin.conftest import DOORS

pytestmark = pytest.mark.django_db(transaction=True)
ADDRESS = "demo@example.test"
BAD = b"caf\xe9-\xff\xfe"  # Latin-1, not UTF-8


class Raw:
    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.greeting = self.file.readline()

    def send(self, data: bytes) -> bytes:
        self.sock.sendall(data + b"\r\n")
        return self.file.readline()

    def until(self, tag: bytes) -> bytes:
        while True:
            line = self.file.readline()
            if not line or line.startswith(tag + b" "):
                return line

    def smtp(self, data: bytes) -> bytes:
        self.sock.sendall(data + b"\r\n")
        while True:
            line = self.file.readline()
            if line[3:4] != b"-":
                return line

    def close(self):
        self.sock.close()


def plain(authzid: bytes, authcid: bytes, password: bytes) -> bytes:
    return base64.b64encode(authzid + b"\0" + authcid + b"\0" + password)


def counted_failures(login: str = ADDRESS) -> int:
    return sum(row.attempts for row in LoginThrottle.objects.filter(login=login, failed=True))


def test_smtp_auth_plain_refuses_another_authorization_identity(doors, make_mailbox):
    make_mailbox(ADDRESS)
    make_mailbox("alice@example.test")
    wire = Raw(doors.submission)
    wire.smtp(b"EHLO laptop")
    answer = wire.smtp(b"AUTH PLAIN " + plain(b"alice@example.test", ADDRESS.encode(),
                                              PASSWORD.encode()))
    assert answer.startswith(b"535 5.7.8 ")
    answer = wire.smtp(b"AUTH PLAIN " + plain(ADDRESS.encode(), ADDRESS.encode(),
                                              PASSWORD.encode()))
    assert answer.startswith(b"235 ")
    wire.close()


def test_non_utf8_credentials_are_a_failed_login_at_every_door(doors, mailbox):
    # IMAP LOGIN (a literal carries any byte) and AUTHENTICATE PLAIN.
    imap = Raw(doors.imap)
    imap.sock.sendall(b"a LOGIN " + ADDRESS.encode() + b" {%d+}\r\n" % len(BAD) + BAD + b"\r\n")
    assert imap.until(b"a").startswith(b"a NO [AUTHENTICATIONFAILED]")
    answer = imap.send(b"b AUTHENTICATE PLAIN " + plain(b"", ADDRESS.encode(), BAD))
    assert answer.startswith(b"b NO [AUTHENTICATIONFAILED]")
    answer = imap.send(b"c AUTHENTICATE PLAIN " + plain(b"", b"d\xe9mo@example.test", b"x"))
    assert answer.startswith(b"c NO [AUTHENTICATIONFAILED]")
    imap.close()
    # POP3 USER/PASS and AUTH PLAIN.
    pop = Raw(doors.pop3)
    assert pop.send(b"USER " + ADDRESS.encode()).startswith(b"+OK")
    assert pop.send(b"PASS " + BAD).startswith(b"-ERR [AUTH]")
    assert pop.send(b"AUTH PLAIN " + plain(b"", ADDRESS.encode(), BAD)).startswith(b"-ERR [AUTH]")
    pop.close()
    # SMTP AUTH PLAIN and LOGIN.
    smtp = Raw(doors.submission)
    smtp.smtp(b"EHLO laptop")
    assert smtp.smtp(b"AUTH PLAIN " + plain(b"", ADDRESS.encode(), BAD)).startswith(b"535 ")
    assert smtp.smtp(b"AUTH LOGIN " + base64.b64encode(ADDRESS.encode())).startswith(b"334 ")
    assert smtp.smtp(base64.b64encode(BAD)).startswith(b"535 ")
    smtp.close()
    # The webmail: a form body that is not UTF-8.
    body = b"address=" + ADDRESS.encode().replace(b"@", b"%40") + b"&password=" + BAD
    response = Client().post("/login/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 403 and b"Wrong address or password" in response.content
    # Each counted as a failed attempt, like a wrong password.
    assert counted_failures() == 7
    assert LoginThrottle.objects.filter(login="d?mo@example.test", failed=True).exists()


@pytest.mark.parametrize("door", DOORS)
def test_a_utf8_password_works_at_every_door(doors, mailbox, door):
    secret = "pässwörd für Ünïcode ✓"
    accounts.set_password(mailbox, secret)
    assert doors.login(door, "127.0.0.1", ADDRESS, secret) == "ok"
