"""The whole path with real clients: a script uploaded over ManageSieve (sievelib), mail sent
to the MX listener (smtplib), the result read over IMAP (imaplib), and the vacation reply relayed
through the outbound queue to a recording SMTP server."""

import imaplib
import smtplib

import pytest
from sievelib.managesieve import Client

from mailcore.models import OutboundMessage
from mailcore.protocols.common.config import ListenerConfig
from mailcore.protocols.imap import server as imap_server
from mailcore.services.outbound import relay
from tests.conftest import PASSWORD
from tests.listeners import run_listener
from tests.managesieve.conftest import sieve_tls, start_managesieve  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.filterwarnings("ignore::UserWarning")]

SCRIPT = """require ["fileinto", "mailbox", "imap4flags", "vacation"];
if header :contains "subject" "report" {
    fileinto :create :flags "\\\\Flagged" "Work/Reports";
    stop;
}
vacation :days 1 :subject "Out of office" "Back on Monday.";
"""


def test_manage_deliver_read_and_reply(start_managesieve, start_smtp, make_mailbox,  # noqa: F811
                                       remote_mx):
    make_mailbox("demo@example.test")
    sink = remote_mx("remote.test")
    client = Client("127.0.0.1", start_managesieve().port)
    assert client.connect("demo@example.test", PASSWORD, authmech="PLAIN")
    assert client.putscript("rules", SCRIPT) and client.setactive("rules")
    client.logout()

    with smtplib.SMTP("127.0.0.1", start_smtp().port) as smtp:
        for subject in ("Monthly report", "Lunch?"):
            smtp.sendmail("boss@remote.test", ["demo@example.test"],
                          f"From: boss@remote.test\r\nTo: demo@example.test\r\n"
                          f"Subject: {subject}\r\nMessage-ID: <{len(subject)}@remote.test>\r\n"
                          f"\r\nHello\r\n".encode())

    config = ListenerConfig(imap_addr=("127.0.0.1", 0))
    with run_listener(lambda: imap_server.start_servers(config)) as imap_listener:
        imap = imaplib.IMAP4("127.0.0.1", imap_listener.port)
        imap.login("demo@example.test", PASSWORD)
        assert imap.select("Work/Reports")[1] == [b"1"]
        _typ, data = imap.fetch("1", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"\\Flagged" in data[0][0] and b"Monthly report" in data[0][1]
        assert imap.select("INBOX")[1] == [b"1"]
        imap.logout()

    for entry in OutboundMessage.objects.filter(finished=False):
        relay.deliver_outbound(entry.pk)
    (reply,) = sink.received
    assert reply.rcpt_tos == ["boss@remote.test"]
    assert b"Subject: Out of office" in reply.data and b"In-Reply-To: <6@remote.test>" in reply.data
