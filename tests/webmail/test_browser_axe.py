"""Accessibility in Debian's Chromium: axe-core (the npm package, served from node_modules to
the page by the test only, under the page's own origin so its CSP stays as it is) finds no
serious or critical violation on the login, mail, message, compose, settings and outbox
pages, on a desktop and on a phone, in the light and the dark theme."""

import json
import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from mailcore.models import Message
from mailcore.services.delivery import deliver_message
from tests.factories import make_message
from tests.webmail.test_browser import ARGS, CHROMIUM, login

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
AXE = Path(django_settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
AXE_PATH = "/__test-axe.js"


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


def serious_violations(page) -> list[str]:
    page.add_script_tag(url=AXE_PATH)
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""")
    return [json.dumps(v) for v in result]


@pytest.mark.parametrize("device,scheme", [("desktop", "light"), ("phone", "dark")])
def test_axe_finds_nothing_serious_on_the_main_pages(browser, live_server, mailbox, device, scheme):
    assert AXE.exists(), "npm install (package.json devDependencies: axe-core)"
    deliver_message(make_message(subject="Hello there", html="<p>Hi <b>you</b></p>",
                                 attachments=[("a.pdf", b"%PDF-1.4", "application/pdf")]),
                    [mailbox.address])
    deliver_message(make_message(subject="Second"), [mailbox.address])
    message = Message.objects.filter(mailbox=mailbox, subject="Hello there").get()
    size = {"width": 1440, "height": 900} if device == "desktop" else {"width": 390, "height": 844}
    context = browser.new_context(viewport=size, color_scheme=scheme,
                                  is_mobile=device == "phone")
    context.route(f"**{AXE_PATH}", lambda route: route.fulfill(
        status=200, content_type="application/javascript", body=AXE.read_text()))
    page = context.new_page()
    found = {}
    page.goto(f"{live_server.url}/login/")
    found["login"] = serious_violations(page)
    login(page, live_server)
    for name, url in [("mail", "/"), ("message", f"/m/{message.pk}/"), ("compose", "/compose/"),
                      ("settings", "/settings/"), ("outbox", "/outbox/")]:
        page.goto(live_server.url + url)
        page.wait_for_load_state("networkidle")
        found[name] = serious_violations(page)
    assert all(not v for v in found.values()), json.dumps(found)
