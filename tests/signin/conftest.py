"""Every mail door started in-process on loopback (IMAP, POP3, SMTP submission), and clients for
each that bind their source address, so tests can speak from 127.0.0.1 and 127.0.0.2 as two
different machines (all of 127.0.0.0/8 is loopback on Linux)."""

import base64
import contextlib
import imaplib
import poplib
import smtplib
import socket
from dataclasses import dataclass

import pytest

from mailcore.protocols.common.config import ListenerConfig
from mailcore.protocols.imap.server import start_servers as start_imap
from mailcore.protocols.pop3.server import start_servers as start_pop3
from mailcore.protocols.smtp.server import start_servers as start_smtp
from mailcore.services import credentials
from tests.listeners import run_listener

USER_IP = "127.0.0.1"
ATTACKER_IP = "127.0.0.2"


class SourceIMAP4(imaplib.IMAP4):
    def __init__(self, source: str, port: int):
        self.source = source
        super().__init__("127.0.0.1", port, timeout=30)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self.source, 0))


class SourcePOP3(poplib.POP3):
    def __init__(self, source: str, port: int):
        self.source = source
        super().__init__("127.0.0.1", port, timeout=30)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self.source, 0))


@dataclass
class Doors:
    imap: int
    pop3: int
    submission: int

    def login(self, door: str, source: str, user: str, password: str) -> str:
        """"ok", "failed" (wrong credentials) or "throttled", as the door answered."""
        return getattr(self, f"_{door}")(source, user, password)

    def _imap(self, source, user, password):
        client = SourceIMAP4(source, self.imap)
        try:
            if password.isascii():
                client.login(user, password)
            else:  # imaplib's LOGIN sends ASCII only
                client.authenticate(
                    "PLAIN", lambda _challenge: f"\0{user}\0{password}".encode()
                )
            return "ok"
        except imaplib.IMAP4.error as error:
            return "throttled" if "UNAVAILABLE" in str(error) else "failed"
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def _pop3(self, source, user, password):
        client = SourcePOP3(source, self.pop3)
        try:
            client.user(user)
            client.pass_(password)
            return "ok"
        except poplib.error_proto as error:
            return "throttled" if b"[SYS/TEMP]" in error.args[0] else "failed"
        finally:
            with contextlib.suppress(Exception):
                client.quit()

    def _smtp(self, source, user, password):
        client = smtplib.SMTP("127.0.0.1", self.submission, timeout=30,
                              source_address=(source, 0))
        try:
            client.ehlo("laptop")
            # One mechanism, one attempt (smtplib.login would try PLAIN, then LOGIN), and UTF-8
            # (smtplib.auth sends ASCII only).
            response = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
            code, _text = client.docmd("AUTH", f"PLAIN {response}")
            return {235: "ok", 454: "throttled"}.get(code, "failed")
        finally:
            with contextlib.suppress(Exception):
                client.quit()


DOORS = ["imap", "pop3", "smtp"]


@pytest.fixture
def doors(transactional_db):
    credentials.forget()
    config = ListenerConfig(imap_addr=("127.0.0.1", 0), pop3_addr=("127.0.0.1", 0),
                            submission_addr=("127.0.0.1", 0))
    with contextlib.ExitStack() as stack:
        imap = stack.enter_context(run_listener(lambda: start_imap(config)))
        pop3 = stack.enter_context(run_listener(lambda: start_pop3(config)))
        smtp = stack.enter_context(run_listener(lambda: start_smtp(config)))
        yield Doors(imap.port, pop3.port, smtp.port)
    credentials.forget()
