"""SRS for aliases that forward outside: the forwarded copy leaves with a sender of ours that
the next hop's SPF accepts, and its bounce comes back and is returned to the real sender;
forged or stale SRS addresses are refused (no relaying through them)."""

import smtplib

import pytest

from mailcore.models import OutboundMessage, OutboundRecipient
from mailcore.trust import srs
from tests.smtp.conftest import make_alias

SECRET = "test-secret"
DAY = 86400


def test_an_srs_address_reverses_to_its_sender():
    address = srs.forward("Alice@remote.test", "example.test", SECRET, now=100 * DAY)
    assert address.startswith("SRS0=") and address.endswith("=remote.test=Alice@example.test")
    assert srs.reverse(address, SECRET, now=100 * DAY) == "Alice@remote.test"
    assert srs.reverse(address.upper().replace("@EXAMPLE.TEST", "@example.test"), SECRET,
                       now=101 * DAY) == "ALICE@REMOTE.TEST"


@pytest.mark.parametrize("mangle", [
    lambda a: a.replace("remote.test", "evil.test"),
    lambda a: "SRS0=aaaaaaaa" + a[len("SRS0=aaaaaaaa"):],
    lambda a: a.replace("=", "", 1),
    lambda a: "SRS0===@example.test",
    lambda a: "SRS0=x=zz=d=@example.test",
])
def test_forged_srs_addresses_are_refused(mangle):
    address = srs.forward("alice@remote.test", "example.test", SECRET, now=100 * DAY)
    assert srs.reverse(mangle(address), SECRET, now=100 * DAY) is None


def test_a_stale_srs_address_is_refused():
    address = srs.forward("alice@remote.test", "example.test", SECRET, now=100 * DAY)
    assert srs.reverse(address, SECRET, now=(100 + srs.MAX_AGE_DAYS + 1) * DAY) is None
    assert srs.reverse(address, "other secret", now=100 * DAY) is None


def test_null_and_own_senders_are_not_rewritten():
    assert srs.forward("", "example.test", SECRET) == ""
    assert srs.forward("a@example.test", "example.test", SECRET) == "a@example.test"


@pytest.mark.django_db(transaction=True)
def test_forwarded_mail_leaves_with_srs_and_its_bounce_returns_to_the_sender(
        start_smtp, local):
    make_alias("fwd", "someone@elsewhere.test")
    port = start_smtp().port
    raw = b"From: alice@remote.test\r\nSubject: hi\r\n\r\nhello\r\n"
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail("alice@remote.test", ["fwd@example.test"], raw)
    forwarded = OutboundMessage.objects.get()
    # The queue keeps addresses in lower case; SRS is case-insensitive.
    assert forwarded.mail_from.lower().startswith("srs0=")
    assert forwarded.mail_from.endswith("=remote.test=alice@example.test")
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail("", [forwarded.mail_from], b"Subject: bounce\r\n\r\nundeliverable\r\n")
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail("", ["SRS0=aaaaaaaa=aa=remote.test=alice@example.test"], raw)
    assert next(iter(refused.value.recipients.values()))[0] == 550
    bounce = OutboundMessage.objects.exclude(pk=forwarded.pk).get()
    assert bounce.mail_from == ""
    assert [r.address for r in OutboundRecipient.objects.filter(message=bounce)] == [
        "alice@remote.test"]
