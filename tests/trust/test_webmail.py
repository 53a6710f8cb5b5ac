"""The user sees the verdict: mail received over the MX (real DNS checks) and then read in the
webmail shows a plain warning when DMARC failed, "Why is this here?" in Junk, and our
Authentication-Results in the headers view."""

import pytest
from django.test import Client

from mailcore.models import Message
from tests.conftest import PASSWORD
from tests.trust.conftest import message
from tests.trust.test_mx import send

pytestmark = pytest.mark.django_db(transaction=True)
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def mx(sender_auth, start_smtp, local):
    return start_smtp().port


@pytest.fixture
def web(local):
    client = Client()
    assert client.post("/login/", {"address": "demo@example.test", "password": PASSWORD}
                       ).status_code == 302
    return client


def test_a_message_failing_dmarc_carries_a_plain_warning(mx, web):
    assert send(mx, "ceo@monitor.test", message("ceo@monitor.test"))[0] == 250
    row = Message.objects.get(mailbox__address="demo@example.test")
    assert row.folder.role == "inbox"
    page = web.get(f"/m/{row.pk}/").content.decode()
    assert 'id="trust-warning"' in page and "monitor.test" in page and "DMARC failed" in page
    fragment = web.get(f"/m/{row.pk}/", **HX).content.decode()
    assert 'id="trust-warning"' in fragment


def test_authenticated_mail_has_no_warning_and_shows_its_results_in_the_headers(
        mx, web, sender_auth):
    raw = sender_auth.sign(message("a@pass.test"), "pass.test")
    assert send(mx, "a@pass.test", raw)[0] == 250
    row = Message.objects.get(mailbox__address="demo@example.test")
    page = web.get(f"/m/{row.pk}/").content.decode()
    assert "trust-warning" not in page
    headers = web.get(f"/m/{row.pk}/?headers=1").content.decode()
    assert "Authentication-Results" in headers
    assert "dmarc=pass (p=reject) header.from=pass.test" in headers


def test_junk_says_why_the_message_is_there(mx, web):
    assert send(mx, "x@quarantine.test", message("x@quarantine.test"))[0] == 250
    row = Message.objects.get(mailbox__address="demo@example.test")
    assert row.folder.role == "junk"
    page = web.get(f"/m/{row.pk}/").content.decode()
    assert 'id="why-junk"' in page and "Why is this here?" in page
    assert "DMARC policy quarantine of quarantine.test" in page
    assert 'value="notjunk"' in page
