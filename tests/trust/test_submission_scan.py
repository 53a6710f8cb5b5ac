"""rspamd scans submission too (issue 14): a real client authenticates on the submission
listener, the message goes to the real rspamd with the user named (its ``User`` field), and
rspamd's reject / soft reject become 550 5.7.1 / 451 4.7.1 while the client waits. SPF and
DMARC do not apply to an authenticated client."""

import smtplib

import pytest

from mailcore.models import OutboundRecipient
from tests.conftest import PASSWORD
from tests.smtp.test_submission import start_mail  # noqa: F401 (fixture)
from tests.trust.test_rspamd import GTUBE

pytestmark = pytest.mark.django_db(transaction=True)


def raw(sender: str, subject: str = "hello", body: bytes = b"Body line.\r\n") -> bytes:
    return (f"From: <{sender}>\r\nTo: friend@remote.test\r\nSubject: {subject}\r\n"
            "Date: Mon, 07 Dec 2026 10:00:00 +0000\r\nMessage-ID: <s1@example.test>\r\n\r\n"
            ).encode() + body


def submit(port: int, user: str, message: bytes) -> tuple[int, str]:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="laptop", timeout=30) as client:
        client.login(user, PASSWORD)
        try:
            client.sendmail(user, ["friend@remote.test"], message)
        except smtplib.SMTPDataError as error:
            return error.smtp_code, error.smtp_error.decode()
    return 250, ""


def queued() -> int:
    return OutboundRecipient.objects.filter(address="friend@remote.test").count()


@pytest.fixture
def port(spam_engine, start_mail, make_mailbox):  # noqa: F811 (the fixture)
    make_mailbox("demo@example.test")
    make_mailbox("compromised@example.test")
    return start_mail()[1]


def test_clean_submission_is_scanned_and_queued(port):
    assert submit(port, "demo@example.test", raw("demo@example.test")) == (250, "")
    assert queued() == 1


def test_spam_from_a_user_is_refused_with_550(port):
    code, text = submit(port, "demo@example.test",
                        raw("demo@example.test", body=b"X" + GTUBE))
    assert code == 550 and text.startswith("5.7.1") and "spam" in text
    assert queued() == 0


def test_rspamd_sees_the_authenticated_user(port):
    # Only the User field names this account: the same message from demo passes.
    code, text = submit(port, "compromised@example.test", raw("compromised@example.test"))
    assert code == 550 and text.startswith("5.7.1")
    assert submit(port, "demo@example.test", raw("demo@example.test")) == (250, "")
    assert queued() == 1


def test_soft_reject_is_451(port):
    code, text = submit(port, "demo@example.test",
                        raw("demo@example.test", subject="please defer-me"))
    assert code == 451 and text.startswith("4.7.1")
    assert queued() == 0


def test_spf_and_dmarc_do_not_apply_to_an_authenticated_user(port, sender_auth):
    # example.test's SPF allows only 192.0.2.1 and the client is 127.0.0.1: at the MX this
    # would be refused as spoofing; an authenticated user sends as its own address.
    assert submit(port, "demo@example.test", raw("demo@example.test")) == (250, "")
    assert queued() == 1


def test_rspamd_down_means_the_submission_is_accepted(port, settings):
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        settings.CORREIO_RSPAMD_URL = f"http://127.0.0.1:{closed.getsockname()[1]}"
    assert submit(port, "demo@example.test", raw("demo@example.test")) == (250, "")
    assert queued() == 1
