"""Sieve runs for mail local users send each other: submitted over SMTP (smtplib to the
submission listener), filed by the recipient's script, read over IMAP; scripts redirecting to
each other do not loop; a reject of local mail goes back to the sender as a DSN."""

import imaplib
import smtplib

import pytest

from mailcore.models import FilterEvent
from mailcore.protocols.common.config import ListenerConfig
from mailcore.protocols.imap import server as imap_server
from mailcore.protocols.smtp.server import start_servers
from tests.conftest import PASSWORD
from tests.listeners import run_listener

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def submission_port():
    # Plaintext AUTH is allowed on loopback by default.
    config = ListenerConfig(submission_addr=("127.0.0.1", 0))
    with run_listener(lambda: start_servers(config)) as listener:
        yield listener.port


def submit(port: int, sender: str, rcpt: str, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.login(sender, PASSWORD)
        smtp.sendmail(sender, [rcpt], f"From: {sender}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n"
                                      f"Message-ID: <{subject}@example.test>\r\n\r\nHi\r\n")


def folder_subjects(address: str) -> dict[str, list[bytes]]:
    config = ListenerConfig(imap_addr=("127.0.0.1", 0))
    found: dict[str, list[bytes]] = {}
    with run_listener(lambda: imap_server.start_servers(config)) as listener:
        imap = imaplib.IMAP4("127.0.0.1", listener.port)
        imap.login(address, PASSWORD)
        _typ, listing = imap.list()
        for line in listing:
            name = line.decode().rsplit(" ", 1)[1].strip('"')
            _typ, count = imap.select(f'"{name}"', readonly=True)
            if int(count[0]):
                _typ, data = imap.fetch(f"1:{int(count[0])}",
                                        "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
                found[name] = [part[0] + part[1] for part in data if isinstance(part, tuple)]
        imap.logout()
    return found


def test_submitted_local_mail_is_filed_by_the_recipients_script(
        submission_port, make_mailbox, install_script):
    make_mailbox("alice@example.test")
    demo = make_mailbox("demo@example.test")
    install_script(demo, 'require ["fileinto", "mailbox", "imap4flags"];\n'
                         'if address :is "from" "alice@example.test" {\n'
                         '  fileinto :create :flags "\\\\Flagged" "Team";\n}\n')
    submit(submission_port, "alice@example.test", "demo@example.test", "plan")
    found = folder_subjects("demo@example.test")
    assert list(found) == ["Team"]
    (item,) = found["Team"]
    assert b"\\Flagged" in item and b"Subject: plan" in item


def test_scripts_redirecting_to_each_other_do_not_loop(
        submission_port, make_mailbox, install_script):
    make_mailbox("carol@example.test")
    alice = make_mailbox("alice@example.test")
    demo = make_mailbox("demo@example.test")
    install_script(alice, 'redirect "demo@example.test";\n')
    install_script(demo, 'redirect "alice@example.test";\n')
    submit(submission_port, "carol@example.test", "demo@example.test", "ping")
    # Past the nesting limit the copy is kept in INBOX: nothing lost, no endless loop.
    kept = {**{f"demo {k}": v for k, v in folder_subjects("demo@example.test").items()},
            **{f"alice {k}": v for k, v in folder_subjects("alice@example.test").items()}}
    assert len(sum(kept.values(), [])) == 1, kept
    assert FilterEvent.objects.filter(kind="redirect").count() == 3


def test_reject_of_local_mail_goes_back_as_a_dsn(submission_port, make_mailbox,
                                                install_script):
    make_mailbox("alice@example.test")
    demo = make_mailbox("demo@example.test")
    install_script(demo, 'require "reject";\nreject "Not from you.";\n')
    submit(submission_port, "alice@example.test", "demo@example.test", "hello")
    assert folder_subjects("demo@example.test") == {}
    (bounce,) = folder_subjects("alice@example.test")["INBOX"]
    assert b"Subject: Undelivered Mail Returned to Sender" in bounce
    assert FilterEvent.objects.filter(mailbox=demo, kind="reject").exists()
