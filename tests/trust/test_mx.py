"""Inbound trust at the MX end to end: a real client (smtplib) talks to the MX listener, which
verifies against a real DNS server (dnsmasq); refusals, Junk and the stored header."""

import smtplib
import time

import pytest

from mailcore.blobstore import load_blob
from mailcore.models import Message
from tests.trust.conftest import message

pytestmark = pytest.mark.django_db(transaction=True)


def send(port: int, sender: str, raw: bytes, to: str = "demo@example.test"):
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.remote.test", timeout=30) as c:
        try:
            c.sendmail(sender, [to], raw)
        except smtplib.SMTPDataError as error:
            return error.smtp_code, error.smtp_error.decode()
    return 250, ""


def folder_of(address: str) -> list[tuple[str, bytes]]:
    rows = Message.objects.filter(mailbox__address=address).select_related("folder")
    return [(row.folder.role, load_blob(row.blob_id)) for row in rows]


@pytest.fixture
def mx(sender_auth, start_smtp, local):
    return start_smtp().port


def test_authenticated_mail_is_delivered_with_our_results_first(mx, sender_auth):
    raw = sender_auth.sign(message("a@pass.test"), "pass.test")
    forged = b"Authentication-Results: mail.example.test; dmarc=pass header.from=x\r\n"
    assert send(mx, "a@pass.test", forged + raw) == (250, "")
    [(role, stored)] = folder_of("demo@example.test")
    assert role == "inbox"
    assert stored.count(b"Authentication-Results: mail.example.test;") == 1
    assert b"dmarc=pass (p=reject) header.from=pass.test" in stored
    assert b"header.from=x" not in stored
    assert stored.index(b"Received:") < stored.index(b"Authentication-Results:")


def test_a_dmarc_reject_failure_is_refused_naming_dmarc(mx):
    code, text = send(mx, "ceo@reject.test", message("ceo@reject.test"))
    assert code == 550
    assert text.startswith("5.7.1") and "DMARC" in text and "reject.test" in text
    assert folder_of("demo@example.test") == []


def test_a_dmarc_quarantine_failure_goes_to_junk(mx):
    assert send(mx, "x@quarantine.test", message("x@quarantine.test"))[0] == 250
    [(role, stored)] = folder_of("demo@example.test")
    assert role == "junk"
    assert b"dmarc=fail (p=quarantine)" in stored


def test_our_own_domain_from_an_unauthenticated_client_is_refused(mx):
    code, text = send(mx, "alice@example.test", message("alice@example.test"))
    assert code == 550 and text.startswith("5.7.1") and "example.test" in text
    # The envelope from elsewhere does not help a forged From of ours either.
    code, text = send(mx, "a@pass.test", message("alice@example.test"))
    assert code == 550 and "From domain example.test" in text
    assert folder_of("demo@example.test") == []


def test_spf_fail_without_dmarc_is_marked_not_refused(mx):
    assert send(mx, "x@nodmarc.test", message("x@nodmarc.test"))[0] == 250
    [(_, stored)] = folder_of("demo@example.test")
    assert b"spf=fail smtp.mailfrom=x@nodmarc.test" in stored


def test_spf_fail_without_dmarc_can_be_refused(mx, settings):
    settings.CORREIO_SPF_FAIL_REJECT = True
    code, text = send(mx, "x@nodmarc.test", message("x@nodmarc.test"))
    assert code == 550 and "SPF" in text


def test_two_from_fields_are_refused(mx, sender_auth):
    raw = b"From: a@pass.test\r\n" + message("a@pass.test")
    code, text = send(mx, "a@pass.test", raw)
    assert code == 550 and "more than one From" in text


def test_a_trusted_arc_sealer_rescues_forwarded_mail(mx, sender_auth, settings):
    original = sender_auth.sign(message("ceo@reject.test", subject="hi"), "reject.test")
    sealed = sender_auth.seal(original.replace(b"Subject: hi", b"Subject: [list] hi"),
                              "lists.test", "dkim=pass")
    assert send(mx, "list@lists.test", sealed)[0] == 550
    settings.CORREIO_ARC_TRUSTED_SEALERS = ["lists.test"]
    assert send(mx, "list@lists.test", sealed)[0] == 250
    [(role, stored)] = folder_of("demo@example.test")
    assert role == "inbox" and b"arc=pass (sealer lists.test)" in stored


def test_a_silent_resolver_gives_451_within_the_timeout(mx, settings, silent_resolver):
    settings.CORREIO_DNS_NAMESERVERS = [silent_resolver.address]
    settings.CORREIO_DNS_TIMEOUT = 1
    start = time.monotonic()
    code, text = send(mx, "a@pass.test", message("a@pass.test"))
    assert time.monotonic() - start < 2.5
    assert code == 451 and text.startswith("4.4.3")
    assert folder_of("demo@example.test") == []


def test_an_alias_that_forwards_outside_keeps_junk_routing_for_its_local_copies(mx):
    from mailcore.models import OutboundMessage, OutboundRecipient
    from tests.smtp.conftest import make_alias

    make_alias("both", "demo@example.test, someone@elsewhere.test")
    # DMARC p=quarantine failure: the local copy goes to Junk, the forwarded one still leaves.
    assert send(mx, "x@quarantine.test", message("x@quarantine.test"),
                to="both@example.test")[0] == 250
    [(role, stored)] = folder_of("demo@example.test")
    assert role == "junk" and b"dmarc=fail (p=quarantine)" in stored
    forwarded = OutboundMessage.objects.get()
    assert forwarded.mail_from.lower().startswith("srs0=")
    assert [r.address for r in OutboundRecipient.objects.filter(message=forwarded)] == [
        "someone@elsewhere.test"]
    # Clean mail through the same alias: INBOX here, and forwarded.
    assert send(mx, "a@pass.test", message("a@pass.test"), to="both@example.test")[0] == 250
    assert sorted(role for role, _ in folder_of("demo@example.test")) == ["inbox", "junk"]
    assert OutboundMessage.objects.count() == 2
