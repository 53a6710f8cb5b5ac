"""Two-factor sign-in in Debian's Chromium (Playwright, never a downloaded browser): enrol from
the security page with a code computed from the key shown (RFC 6238, pyotp), then sign out and
sign in again with the password and a fresh code."""

import os
import re
import time

import pyotp
import pytest

from tests.conftest import PASSWORD
from tests.webmail.test_browser import ARGS, CHROMIUM

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


def test_enrol_and_sign_in_with_a_computed_code(browser, live_server, mailbox):
    page = browser.new_page()
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_address", mailbox.address)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#message-list")

    page.goto(f"{live_server.url}/settings/")
    page.click("text=Security: app passwords, two-factor")
    page.click("text=Set up two-factor sign-in")
    secret = page.inner_text("#totp-secret").strip()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    page.fill("#confirm-code", pyotp.TOTP(secret).now())
    page.click("text=Turn on")
    codes = page.inner_text("#recovery-codes").split()
    assert len(codes) == 10
    assert "On." in page.inner_text("#two-factor-status")

    page.click("text=Sign out")
    page.wait_for_selector("#id_address")
    page.fill("#id_address", mailbox.address)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#id_code")
    assert "/login/code/" in page.url
    page.fill("#id_code", "000000")
    page.click("button[type=submit]")
    assert "not right" in page.inner_text(".form-error")
    # The enrolling code's time step is spent: the next one (within the allowed drift).
    page.fill("#id_code", pyotp.TOTP(secret).at(time.time() + 30))
    page.click("button[type=submit]")
    page.wait_for_selector("#message-list")
    page.close()


def test_staff_enrol_in_the_admin_and_the_admin_login_then_asks_for_a_code(browser, live_server):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("boss", "boss@example.test", PASSWORD)
    page = browser.new_page()

    def admin_login(code=""):
        page.goto(f"{live_server.url}/admin/login/?next=/admin/")
        page.fill("#id_username", "boss")
        page.fill("#id_password", PASSWORD)
        page.fill("#id_code", code)
        page.click("input[type=submit]")

    admin_login()
    page.wait_for_selector("#two-factor-link")
    page.click("#two-factor-link")
    assert "Off." in page.inner_text("#two-factor-status")
    page.click("text=Set up two-factor sign-in")
    secret = page.inner_text("#totp-secret").strip()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    page.fill("#confirm-code", "000000")
    page.click("text=Turn on")
    assert "not right" in page.inner_text("#two-factor-confirm")
    page.fill("#confirm-code", pyotp.TOTP(secret).now())
    page.click("text=Turn on")
    codes = page.inner_text("#recovery-codes").split()
    assert len(codes) == 10
    assert "On." in page.inner_text("#two-factor-status")

    page.click("#logout-form button")
    # The password alone, or with a wrong code, no longer opens the admin.
    admin_login()
    assert "code from your authenticator app" in page.inner_text(".errornote")
    assert "/admin/login/" in page.url
    admin_login("000000")
    assert "not right" in page.inner_text(".errornote")
    page.goto(f"{live_server.url}/admin/")
    assert "/admin/login/" in page.url
    # A fresh code (the enrolling one's time step is spent) opens it.
    admin_login(pyotp.TOTP(secret).at(time.time() + 30))
    page.wait_for_selector("#two-factor-link")
    assert page.url.endswith("/admin/")
    page.click("#logout-form button")
    # So does a recovery code, once.
    admin_login(codes[0])
    page.wait_for_selector("#two-factor-link")
    page.click("#logout-form button")
    admin_login(codes[0])
    assert "not right" in page.inner_text(".errornote")
    page.close()
