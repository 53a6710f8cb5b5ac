"""App passwords: made by ``manage.py apppassword`` or the webmail's security page and shown once,
accepted by IMAP, POP3 and SMTP submission like the account password (not by the webmail), their
last use recorded, and revoked one by one."""

import io
import re

import pytest
from django.core.management import call_command
from django.test import Client

from mailcore.models import AppPassword
from tests.conftest import PASSWORD
from tests.signin.conftest import ATTACKER_IP, DOORS, USER_IP

pytestmark = pytest.mark.django_db(transaction=True)
ADDRESS = "demo@example.test"
SECRET = re.compile(r"^[a-z]{4}( [a-z]{4}){4}$")


def make_app_password(label: str = "phone") -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("apppassword", ADDRESS, "--label", label, stdout=out, stderr=err)
    secret = out.getvalue().strip()
    assert SECRET.match(secret) and "shown only now" in err.getvalue()
    return secret


@pytest.mark.parametrize("door", DOORS)
def test_an_app_password_opens_every_mail_door_and_records_its_use(doors, mailbox, door):
    secret = make_app_password()
    assert doors.login(door, ATTACKER_IP, ADDRESS, secret) == "ok"
    # Typed without the spaces, or in capitals, it is the same password.
    assert doors.login(door, USER_IP, ADDRESS, secret.replace(" ", "").upper()) == "ok"
    row = AppPassword.objects.get()
    assert row.last_used_from == USER_IP and row.last_used_at is not None
    assert row.digest not in secret and secret.replace(" ", "") not in row.digest
    # The account password still works while two-factor is off.
    assert doors.login(door, USER_IP, ADDRESS, PASSWORD) == "ok"


def test_a_revoked_app_password_no_longer_opens_anything(doors, mailbox):
    secret = make_app_password()
    other = make_app_password("laptop")
    out = io.StringIO()
    call_command("apppassword", ADDRESS, "--list", stdout=out)
    assert "phone" in out.getvalue() and "laptop" in out.getvalue()
    phone = AppPassword.objects.get(label="phone")
    call_command("apppassword", ADDRESS, "--revoke", str(phone.pk), stdout=io.StringIO())
    for door in DOORS:
        assert doors.login(door, USER_IP, ADDRESS, secret) == "failed"
        assert doors.login(door, USER_IP, ADDRESS, other) == "ok"


def test_the_webmail_sign_in_does_not_take_an_app_password(mailbox):
    secret = make_app_password()
    response = Client().post("/login/", {"address": ADDRESS, "password": secret})
    assert response.status_code == 403


def test_the_security_page_creates_shows_once_lists_and_revokes(mailbox):
    web = Client()
    web.force_login(mailbox.user)
    response = web.post("/settings/security/", {"action": "create-app-password",
                                                "label": "Thunderbird at home"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    secret = re.search(rb'id="new-app-password">([a-z ]+)<', response.content).group(1).decode()
    assert SECRET.match(secret)
    page = web.get("/settings/security/")
    assert b"Thunderbird at home" in page.content and secret.encode() not in page.content
    assert b"never" in page.content
    from mailcore.services import credentials

    assert credentials.authenticate(ADDRESS, secret, "192.0.2.44") == mailbox
    assert b"from 192.0.2.44" in web.get("/settings/security/").content
    row = AppPassword.objects.get()
    # Another user's id is simply not found.
    response = web.post("/settings/security/", {"action": "revoke-app-password",
                                                "app_password": str(row.pk + 1000)})
    assert AppPassword.objects.count() == 1
    response = web.post("/settings/security/", {"action": "revoke-app-password",
                                                "app_password": str(row.pk)})
    assert response.status_code == 302 and not AppPassword.objects.exists()
    # A name is required; bad input is a form error, never a 500.
    response = web.post("/settings/security/", {"action": "create-app-password", "label": " "})
    assert response.status_code == 400 and b"form-error" in response.content
    response = web.post("/settings/security/", {"action": "revoke-app-password",
                                                "app_password": "x' OR 1=1"})
    assert response.status_code == 302
