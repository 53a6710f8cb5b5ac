"""Two-factor sign-in (RFC 6238 TOTP, recovery codes) for the webmail and the admin, and what it
does to the mail doors: the account password no longer opens IMAP, POP3 or SMTP (not even from the
credential cache), only app passwords do."""

import re
import time

import pyotp
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from mailcore.exceptions import AuthFailed
from mailcore.models import LoginThrottle, TwoFactor
from mailcore.services import apppasswords, twofactor
from tests.conftest import PASSWORD
from tests.signin.conftest import DOORS, USER_IP

pytestmark = pytest.mark.django_db(transaction=True)
ADDRESS = "demo@example.test"


def code_at(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


def enable_through_the_page(web: Client) -> tuple[str, list[str]]:
    page = web.post("/settings/security/", {"action": "two-factor-begin"})
    secret = re.search(rb'id="totp-secret">([A-Z2-7]+)<', page.content).group(1).decode()
    assert b"otpauth://totp/Correio:demo%40example.test?secret=" in page.content
    wrong = web.post("/settings/security/", {"action": "two-factor-confirm", "code": "000000"})
    assert wrong.status_code == 400 and not twofactor.is_enabled_for_user(1_000_000)
    page = web.post("/settings/security/", {"action": "two-factor-confirm",
                                            "code": code_at(secret)})
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    codes = re.findall(rb"<li><code>([0-9a-f]{5}-[0-9a-f]{5})</code></li>", page.content)
    assert len(codes) == 10
    return secret, [c.decode() for c in codes]


@pytest.fixture
def web(mailbox):
    client = Client()
    client.force_login(mailbox.user)
    return client


def test_the_webmail_asks_for_a_code_once_two_factor_is_on(mailbox, web):
    secret, recovery = enable_through_the_page(web)
    assert b"On. 10 recovery codes left" in web.get("/settings/security/").content
    browser = Client(REMOTE_ADDR=USER_IP)
    response = browser.post("/login/", {"address": ADDRESS, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"].startswith("/login/code/")
    # The password alone signs nobody in.
    assert browser.get("/")["Location"].startswith("/login/")
    assert browser.post("/login/code/", {"code": "123456"}).status_code == 403
    next_code = code_at(secret, 1)  # the confirming code's step is spent
    assert browser.post("/login/code/", {"code": next_code}).status_code == 302
    assert browser.get("/")["Location"].startswith("/f/")
    # A code is good once, even in another browser.
    again = Client()
    again.post("/login/", {"address": ADDRESS, "password": PASSWORD})
    assert again.post("/login/code/", {"code": next_code}).status_code == 403
    # A recovery code works, once.
    assert again.post("/login/code/", {"code": recovery[0].upper()}).status_code == 302
    third = Client()
    third.post("/login/", {"address": ADDRESS, "password": PASSWORD})
    assert third.post("/login/code/", {"code": recovery[0]}).status_code == 403
    assert twofactor.recovery_codes_left(mailbox.user) == 9
    # Wrong codes go through the throttle, per account and address.
    assert LoginThrottle.objects.filter(login=f"{ADDRESS}#2fa", failed=True).exists()


def test_the_code_step_expires_and_cannot_be_reached_without_the_password(mailbox, web):
    enable_through_the_page(web)
    assert Client().get("/login/code/").status_code == 302
    browser = Client()
    browser.post("/login/", {"address": ADDRESS, "password": PASSWORD})
    session = browser.session
    session["correio_2fa_pending"]["since"] -= 3600
    session.save()
    assert browser.get("/login/code/")["Location"] == "/login/"


def test_with_two_factor_on_the_mail_doors_take_only_app_passwords(doors, mailbox, web):
    app_password = apppasswords.create_app_password(mailbox, "phone")[1]
    for door in DOORS:  # the account password is remembered by the credential cache now
        assert doors.login(door, USER_IP, ADDRESS, PASSWORD) == "ok"
    secret, _codes = enable_through_the_page(web)
    for door in DOORS:
        assert doors.login(door, USER_IP, ADDRESS, PASSWORD) == "failed"
        assert doors.login(door, USER_IP, ADDRESS, app_password) == "ok"
    # Turned off (with a code), the account password works again.
    page = web.post("/settings/security/", {"action": "two-factor-disable",
                                            "code": code_at(secret, 1)})
    assert page.status_code == 302 and not TwoFactor.objects.exists()
    assert doors.login("imap", USER_IP, ADDRESS, PASSWORD) == "ok"


def test_the_admin_asks_a_staff_account_with_two_factor_for_a_code(db):
    boss = get_user_model().objects.create_superuser("boss", "boss@example.test", PASSWORD)
    secret, _uri = twofactor.begin_enrolment(boss)
    twofactor.confirm_enrolment(boss, code_at(secret))
    admin = Client()
    response = admin.post("/admin/login/", {"username": "boss", "password": PASSWORD})
    assert response.status_code == 200 and b"Enter the code" in response.content
    response = admin.post("/admin/login/", {"username": "boss", "password": PASSWORD,
                                            "code": "999999"})
    assert b"That code is not right" in response.content
    response = admin.post("/admin/login/", {"username": "boss", "password": PASSWORD,
                                            "code": code_at(secret, 1)})
    assert response.status_code == 302
    assert admin.get("/admin/").status_code == 200


def test_codes_guessed_from_many_addresses_hit_a_hard_limit_per_account(mailbox, web, settings):
    # The guesser has the password and many addresses: each address is under its own limit, yet
    # after CODE_LIMIT failed codes for the account no code is checked, not even the right one.
    from mailcore.exceptions import AuthThrottled
    from mailcore.models import LoginThrottle

    settings.CORREIO_AUTH_DELAY_MS = 0
    settings.CORREIO_AUTH_CODE_LIMIT = 6
    secret, codes = enable_through_the_page(web)
    user = mailbox.user
    for n in range(6):
        with pytest.raises(AuthFailed) as failed:
            twofactor.check_second_factor(user, "000000", f"10.0.0.{n + 1}")
        assert type(failed.value) is AuthFailed  # checked, and wrong
    for code in (code_at(secret), codes[0]):
        with pytest.raises(AuthThrottled):
            twofactor.check_second_factor(user, code, "10.9.9.9")
    # The password throttle of that account is untouched: the webmail's first step still works.
    assert not LoginThrottle.objects.filter(login=ADDRESS).exists()
    LoginThrottle.objects.filter(login__endswith="#2fa").delete()  # the window has passed
    twofactor.check_second_factor(user, code_at(secret, 1), "10.9.9.9")
