"""End-to-end tests in Debian's Chromium (never a downloaded browser), driven by Playwright
against pytest-django's live server: log in, read, live updates, move and undo, search,
keyboard shortcuts, every hostile message, and screenshots of the main views under var/."""

import os
import re
import smtplib
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from mailcore.protocols.common.config import ListenerConfig
from mailcore.protocols.smtp.server import start_servers
from mailcore.services.delivery import deliver_message
from tests.conftest import PASSWORD
from tests.factories import make_message
from tests.listeners import run_listener

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make in
# between are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
HOSTILE = sorted((Path(__file__).parent.parent / "data" / "hostile").glob("*.eml"))
SHOTS = Path(django_settings.BASE_DIR) / "var" / "screenshots"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


class Watch:
    """Every request leaving the live server, and every dialog a script opened."""

    def __init__(self, page, origin: str):
        self.outside: list[str] = []
        self.dialogs: list[str] = []
        self.console_errors: list[str] = []
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))

        def route(route):
            url = route.request.url
            if url.startswith(origin) or url.startswith("data:"):
                route.continue_()
            else:
                self.outside.append(url)
                route.abort()

        page.context.route("**/*", route)


def login(page, live_server, address="demo@example.test"):
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_address", address)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#message-list")


def test_reading_live_updates_move_undo_search_shortcuts_and_screenshots(
    browser, live_server, mailbox, settings
):
    settings.CORREIO_WEBMAIL_POLL_SECONDS = 1
    deliver_message(make_message(subject="Plain hello", body="Visit https://example.org now\n"),
                    [mailbox.address])
    deliver_message(
        make_message(subject="Quarterly numbers", sender="Bob <bob@corp.test>",
                     html="<h1>Report</h1><p>Numbers <b>inside</b></p>",
                     attachments=[("report.pdf", b"%PDF-1.4 fake", "application/pdf")]),
        [mailbox.address],
    )
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    watch = Watch(page, live_server.url)
    login(page, live_server)

    # Read a multipart HTML message with an attachment.
    page.click("text=Quarterly numbers")
    frame = page.frame_locator("iframe.body-frame")
    frame.locator("h1").wait_for()
    assert frame.locator("b").inner_text() == "inside"
    assert page.locator(".attachments a").inner_text() == "report.pdf"
    assert "/m/" in page.url  # the URL follows the open message
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "desktop-light-reading.png"), caret="initial")

    # Mail arriving meanwhile over SMTP (a real listener, Python's smtplib) appears live.
    config = ListenerConfig(smtp_addr=("127.0.0.1", 0), hostname="mail.example.test")
    with run_listener(lambda: start_servers(config)) as smtp:
        with smtplib.SMTP("127.0.0.1", smtp.port) as client:
            refused = client.sendmail("carol@remote.test", [mailbox.address],
                                      make_message(subject="Arrived live"))
        assert refused == {}
    page.wait_for_selector("text=Arrived live", timeout=10000)

    # Move (archive) and undo.
    row = page.locator(".row", has_text="Plain hello")
    row.locator("input.select").check()
    page.click("#list-form button[value=archive]")
    page.wait_for_selector("#toast .undo")
    assert page.locator(".row", has_text="Plain hello").count() == 0
    page.click("#toast .undo")
    page.wait_for_selector(".row:has-text('Plain hello')")

    # Search with operators.
    page.fill("#search-q", "from:bob has:attachment")
    page.select_option("#search-scope", "all")
    page.press("#search-q", "Enter")
    page.wait_for_selector("h1:has-text('Results')")
    subjects = page.locator(".row .subject").all_inner_texts()
    assert subjects == ["Quarterly numbers"]

    # Keyboard shortcuts: back to the inbox, j/k, open, help, archive with e.
    page.goto(f"{live_server.url}/")
    page.wait_for_selector(".row")
    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    focused = page.locator(".row.focused .subject").inner_text()
    page.keyboard.press("o")
    page.wait_for_selector(f"#reader .subject:has-text('{focused}')")
    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    page.keyboard.press("Escape")
    assert not page.locator("#help").is_visible()
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "search-q"
    page.keyboard.press("Escape")
    page.locator(".row.focused .open").focus()
    page.keyboard.press("e")
    page.wait_for_selector("#toast .toast")
    from playwright.sync_api import expect

    exact = re.compile(f"^{re.escape(focused)}$")
    expect(page.locator("#rows .subject").filter(has_text=exact)).to_have_count(0)

    # Screenshots: light and dark, desktop and phone.
    page.goto(f"{live_server.url}/")
    page.wait_for_selector(".row")
    page.screenshot(path=str(SHOTS / "desktop-light-list.png"), caret="initial")
    dark = browser.new_context(viewport={"width": 1400, "height": 900}, color_scheme="dark")
    dpage = dark.new_page()
    login(dpage, live_server)
    dpage.click(".row .open >> nth=0")
    dpage.wait_for_selector("#reader .subject")
    dpage.screenshot(path=str(SHOTS / "desktop-dark-reading.png"), caret="initial")
    phone = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="light",
                                is_mobile=True, has_touch=True)
    ppage = phone.new_page()
    login(ppage, live_server)
    ppage.screenshot(path=str(SHOTS / "phone-light-list.png"), caret="initial")
    assert not ppage.locator("#reader").is_visible()
    ppage.click(".row .open >> nth=0")
    ppage.wait_for_selector("#reader .subject")
    assert not ppage.locator("#message-list").is_visible()
    ppage.screenshot(path=str(SHOTS / "phone-light-reading.png"), caret="initial")
    phone_dark = browser.new_context(viewport={"width": 390, "height": 844},
                                     color_scheme="dark", is_mobile=True)
    pdpage = phone_dark.new_page()
    login(pdpage, live_server)
    pdpage.screenshot(path=str(SHOTS / "phone-dark-list.png"), caret="initial")

    assert watch.outside == [] and watch.dialogs == []
    assert not [e for e in watch.console_errors if "Content Security Policy" in e]


def test_every_hostile_message_opens_inert_in_chromium(browser, live_server, mailbox):
    for path in HOSTILE:
        deliver_message(path.read_bytes(), [mailbox.address])
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    watch = Watch(page, live_server.url)
    login(page, live_server)
    page.evaluate("window.__pwned = false")
    ids = page.locator("#rows .row").evaluate_all("rows => rows.map(r => r.dataset.id)")
    more = page.locator("#more a")
    while more.count():
        more.click()
        page.wait_for_timeout(300)
        ids = page.locator("#rows .row").evaluate_all("rows => rows.map(r => r.dataset.id)")
        more = page.locator("#more a")
    assert len(ids) == len(HOSTILE)
    for message_id in ids:
        page.goto(f"{live_server.url}/m/{message_id}/")
        page.wait_for_selector("#reader .subject")
        if page.locator("iframe.body-frame").count():
            page.frame_locator("iframe.body-frame").locator("body").wait_for(state="attached")
        page.wait_for_timeout(150)
        # The page itself was not taken over: still signed in, title intact, htmx alive.
        assert page.url.startswith(live_server.url)
        assert page.evaluate("typeof htmx") == "object"
    time.sleep(0.5)
    assert watch.dialogs == [], watch.dialogs
    assert watch.outside == [], watch.outside
    page.goto(f"{live_server.url}/")
    assert page.locator("#message-list").count() == 1  # no hostile hx-get logged us out
