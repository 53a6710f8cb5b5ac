"""SMTP smuggling (CVE-2023-51764 for Postfix, -51765 sendmail, -51766 Exim): only
``<CRLF>.<CRLF>`` ends the data (RFC 5321 §4.1.1.4). A message carrying any other end-of-data
look-alike followed by a second transaction stays ONE message, stored whole, and the smuggled
"transaction" is never run."""

import time

import pytest

from mailcore.models import Message
from tests.smtp.conftest import Wire, stored

pytestmark = pytest.mark.django_db(transaction=True)

VARIANTS = {
    "LF.LF": b"\n.\n",
    "CRLF.LF": b"\r\n.\n",
    "LF.CRLF": b"\n.\r\n",
    "CR.CR": b"\r.\r",
    "CRLF.CR": b"\r\n.\r",
    "CR.CRLF": b"\r.\r\n",
    "LF.CR": b"\n.\r",
    "CR.LF": b"\r.\n",
    "CRLF.LFCR": b"\r\n.\n\r",
    "CRLF NUL.CRLF": b"\r\n\x00.\r\n",
    "CRLF.SP CRLF": b"\r\n. \r\n",
}
SMUGGLED = (
    b"MAIL FROM:<ceo@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
    b"From: ceo@example.test\r\nSubject: smuggled\r\n\r\nwire the money\r\n"
)


@pytest.mark.parametrize("ending", VARIANTS.values(), ids=VARIANTS.keys())
def test_an_end_of_data_look_alike_never_ends_the_message(wire, ending):
    assert wire.cmd("MAIL FROM:<sender@remote.test>") == "250 2.1.0 OK"
    assert wire.cmd("RCPT TO:<demo@example.test>") == "250 2.1.5 OK"
    assert wire.cmd("DATA").startswith("354")
    wire.send(b"Subject: first\r\n\r\nhello" + ending + SMUGGLED + b".\r\n")
    assert wire.reply().startswith("250 2.0.0 OK: queued as ")
    # Exactly one reply came: the next one answers our NOOP, not a smuggled command.
    assert wire.cmd("NOOP") == "250 2.0.0 OK"
    assert Message.objects.count() == 1
    (raw,) = stored("demo@example.test")
    assert b"Subject: smuggled" in raw and b"wire the money" in raw
    assert stored("alice@example.test") == []


def test_bare_line_feeds_and_carriage_returns_are_kept_inside_the_message(wire):
    wire.cmd("MAIL FROM:<sender@remote.test>")
    wire.cmd("RCPT TO:<demo@example.test>")
    wire.cmd("DATA")
    body = b"Subject: bare\r\n\r\none\ntwo\rthree\r\n"
    wire.send(body + b".\r\n")
    assert wire.reply().startswith("250 ")
    assert stored("demo@example.test")[0].endswith(body)


def test_the_end_of_data_split_across_packets_is_still_recognised(port, local):
    client = Wire(port)
    client.reply()
    client.cmd("EHLO client.remote.test")
    client.cmd("MAIL FROM:<sender@remote.test>")
    client.cmd("RCPT TO:<demo@example.test>")
    client.cmd("DATA")
    for piece in (b"Subject: split\r\n\r\nbody\r", b"\n", b".", b"\r", b"\n"):
        client.send(piece)
        time.sleep(0.05)
    assert client.reply().startswith("250 ")
    assert stored("demo@example.test")[0].endswith(b"Subject: split\r\n\r\nbody\r\n")
