"""The rules page in Debian's Chromium: add a rule and a vacation reply through htmx, see a
syntax error from the raw editor, then check the active script."""

import os

import pytest

from mailcore.models import SieveScript
from mailcore.services import folders
from tests.webmail.test_browser import ARGS, CHROMIUM, login

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_rules_page_in_a_browser(live_server, mailbox):
    from playwright.sync_api import sync_playwright

    folders.create_folder(mailbox, "Receipts")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page()
        login(page, live_server)
        page.click("text=Rules")
        page.wait_for_selector("#rules-panel")
        page.select_option("#id_field", "subject")
        page.fill("#id_contains", "receipt")
        page.select_option("#id_action", "move")
        page.select_option("#id_folder", "Receipts")
        page.click("text=Add rule")
        page.wait_for_selector("#rules-panel .rule-list li")
        assert "Receipts" in page.inner_text("#rules-panel .rule-list")
        page.check("#id_enabled")
        page.fill("#id_message", "Away until Monday.")
        page.click("text=Save vacation reply")
        page.wait_for_selector("text=Vacation reply saved.")
        page.fill("#id_script", "keep;\nfrobnicate;\n")
        page.click("text=Save script")
        page.wait_for_selector("#id_script_error")
        assert page.inner_text("#id_script_error").startswith("Line 2: unknown command")
        browser.close()
    script = SieveScript.objects.get(mailbox=mailbox, active=True).content
    assert 'fileinto "Receipts"' in script and "Away until Monday." in script
