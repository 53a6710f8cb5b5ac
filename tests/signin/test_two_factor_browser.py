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
