"""Issue 16's last low items and issue 17's leftovers, in Debian's Chromium as a user meets
them: the rich-text signature follows the From identity (and what arrives over IMAP carries
the new one), a 30 MB picture pasted into rich text is refused with a message and nothing
else of the draft is lost (in the editor, and on the server when the editor is bypassed),
errors said in words, the From menu with display names."""

import email
import imaplib
import os
from email import policy

import pytest

from mailcore.models import Alias, Mailbox, OutboundMessage
from tests.conftest import PASSWORD
from tests.webmail.test_browser import Watch, browser, login  # noqa: F401 (fixture)
from tests.webmail.test_browser_compose import run_due_deliveries
from tests.webmail.test_browser_features import wait_until
from webmail.identities import save_identity
from webmail.models import Composition, WebmailSettings

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
EDITOR = "#rich-body .ql-editor"


@pytest.fixture
def rich_sender(mailbox):
    Mailbox.objects.filter(pk=mailbox.pk).update(display_name="Dee Mo")
    mailbox.refresh_from_db()
    Alias.objects.create(domain=mailbox.domain, local_part="sales", destinations=mailbox.address)
    WebmailSettings.objects.create(mailbox=mailbox, compose_html=True, signature="Demo sig",
                                   undo_seconds=5)
    save_identity(mailbox, "sales@example.test", display_name="ACME Sales",
                  signature="Sales team (plain)", signature_html="<p><strong>Sales</strong> team</p>")
    return mailbox


def test_rich_text_signature_follows_the_from_identity_and_arrives_over_imap(
    browser, live_server, rich_sender, make_mailbox, imap_listener  # noqa: F811
):
    make_mailbox("bob@example.test")
    page = browser.new_page()
    watch = Watch(page, live_server.url)
    login(page, live_server)
    page.click("#compose-button")
    page.wait_for_selector("#rich-editor[data-ready='1']")
    # The From menu names each identity: "Name <address>".
    assert page.locator("#compose-from option").all_inner_texts() == [
        "Dee Mo <demo@example.test>", "ACME Sales <sales@example.test>"]
    assert "Demo sig" in page.inner_text(EDITOR)
    page.fill("#compose-to", "bob@example.test")
    page.fill("#compose-subject", "Prices")
    page.click(EDITOR)
    page.keyboard.press("Control+Home")
    page.keyboard.type("Dear Bob, here are the prices.")

    page.select_option("#compose-from", "sales@example.test")
    wait_until(page, "document.querySelector('#rich-body .ql-editor').innerText.includes('Sales team')")
    text = page.inner_text(EDITOR)
    assert "Demo sig" not in text and text.startswith("Dear Bob, here are the prices.")
    assert page.inner_text(f"{EDITOR} strong") == "Sales"
    # And back, and again: each swap replaces the other's signature, the letter stays.
    page.select_option("#compose-from", "demo@example.test")
    wait_until(page, "document.querySelector('#rich-body .ql-editor').innerText.includes('Demo sig')")
    assert "Sales team" not in page.inner_text(EDITOR)
    page.select_option("#compose-from", "sales@example.test")
    wait_until(page, "document.querySelector('#rich-body .ql-editor').innerText.includes('Sales team')")
    assert page.inner_text(EDITOR).count("Sales team") == 1

    page.click("#send-button")
    page.wait_for_selector("#undo-send")
    assert run_due_deliveries(release=True) == 1
    host, port = imap_listener
    with imaplib.IMAP4(host, port) as imap:
        imap.login("bob@example.test", PASSWORD)
        imap.select("INBOX")
        _, data = imap.fetch("1", "(RFC822)")
    message = email.message_from_bytes(data[0][1], policy=policy.default)
    assert str(message["From"]) == "ACME Sales <sales@example.test>"
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert plain.startswith("Dear Bob, here are the prices.")
    assert "\n-- \n" in plain.replace("\r\n", "\n") and "*Sales* team" in plain
    assert "Demo sig" not in plain and "Demo sig" not in html
    assert "<strong>Sales</strong> team" in html
    assert watch.outside == [] and not watch.console_errors


PASTE = """(size) => {
    const editor = document.querySelector('#rich-body .ql-editor');
    const data = new DataTransfer();
    data.setData('text/html', '<p>and a caption</p><img src="data:image/png;base64,' +
                 'A'.repeat(Math.ceil(size / 3) * 4) + '">');
    data.setData('text/plain', 'and a caption');
    editor.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true,
                                                      cancelable: true}));
}"""


def test_a_30_mb_picture_pasted_into_rich_text_is_refused_and_nothing_else_is_lost(
    browser, live_server, rich_sender, settings  # noqa: F811
):
    page = browser.new_page()
    watch = Watch(page, live_server.url)
    login(page, live_server)
    page.click("#compose-button")
    page.wait_for_selector("#rich-editor[data-ready='1']")
    page.fill("#compose-to", "carol@remote.test")
    page.fill("#compose-subject", "Holiday")
    page.click(EDITOR)
    page.keyboard.press("Control+Home")
    page.keyboard.type("Look at this: ")
    page.evaluate(PASTE, 30 * 1024 * 1024)
    page.wait_for_selector("#rich-error:not([hidden])")
    assert "A pasted picture is 30 MB; pictures in the text may be up to 5 MB" in \
        page.inner_text("#rich-error")
    text = page.inner_text(EDITOR)
    assert "Look at this:" in text and "and a caption" in text and "Demo sig" in text
    assert page.locator(f"{EDITOR} img").count() == 0
    page.wait_for_selector("#save-status:has-text('Draft saved')", timeout=15000)
    composition = Composition.objects.get(mailbox=rich_sender)
    assert "and a caption" in composition.body_html and "data:" not in composition.body_html

    # With the editor's check bypassed (a form the browser still makes too large), the
    # server answers in the status line and the form keeps everything.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024
    page.evaluate("""() => { document.getElementById('compose-body-html').value +=
        '<img src="data:image/png;base64,' + 'A'.repeat(400 * 1024) + '">'; }""")
    page.click("#send-button")
    page.wait_for_selector("#save-status:has-text('A picture in the text is too large')")
    assert page.input_value("#compose-to") == "carol@remote.test"
    assert page.input_value("#compose-subject") == "Holiday"
    assert "and a caption" in page.inner_text(EDITOR)
    assert OutboundMessage.objects.count() == 0
    assert watch.outside == []
    # The server's 413 is the only error the console shows (the browser logs a failed load).
    assert all("413" in e for e in watch.console_errors), watch.console_errors


AXE_CHECK = """async () => {
    const r = await axe.run(document, {resultTypes: ['violations']});
    return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
        .map(v => v.id + ': ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '));
}"""


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_keyboard_only_errors_in_words_no_sideways_scroll_and_axe_clean_in_error_states(
    browser, live_server, mailbox, device  # noqa: F811
):
    from django.conf import settings as django_settings

    from mailcore.services.delivery import deliver_message
    from tests.factories import make_message
    from tests.webmail.test_browser_axe import AXE, AXE_PATH

    deliver_message(make_message(subject="Hello there", sender="Bob <bob@corp.test>"),
                    [mailbox.address])
    size = {"width": 1440, "height": 900} if device == "desktop" else {"width": 390, "height": 844}
    context = browser.new_context(viewport=size, is_mobile=device == "phone",
                                  has_touch=device == "phone")
    page = context.new_page()
    watch = Watch(page, live_server.url)
    # After the watch's route: the later route answers first.
    context.route(f"**{AXE_PATH}", lambda route: route.fulfill(
        status=200, content_type="application/javascript", body=AXE.read_text()))
    problems = {}

    def check(name):
        page.wait_for_load_state("networkidle")
        wide = page.evaluate("document.documentElement.scrollWidth")
        if wide > size["width"]:
            problems[f"{name}: scrolls sideways"] = wide
        page.add_script_tag(url=AXE_PATH)
        found = page.evaluate(AXE_CHECK)
        if found:
            problems[f"{name}: axe"] = found

    # Sign in with the keyboard only; an empty form says what is missing, in words.
    page.goto(f"{live_server.url}/login/")
    page.keyboard.press("Enter")
    page.wait_for_selector("#id_address_error")
    assert page.inner_text("#id_address_error") == "Enter your email address."
    assert page.get_attribute("#id_address", "aria-describedby") == "id_address_error"
    assert page.get_attribute("#id_password", "aria-invalid") == "true"
    check("login with errors")
    page.focus("#id_address")
    page.keyboard.type(mailbox.address)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_selector("#message-list")
    check("mail")

    # A search of only "from:" finds nothing and says why.
    page.focus("#search-q")
    page.keyboard.type("from:")
    page.keyboard.press("Enter")
    page.wait_for_selector(".search-problem")
    assert "needs something right after the colon" in page.inner_text(".search-problem")
    assert page.locator("#rows .row").count() == 0
    check("search problem")

    # Compose: a bad address keeps what was typed and names it.
    page.goto(f"{live_server.url}/")
    page.wait_for_selector("#message-list")
    page.locator("body").click(position={"x": 2, "y": 600})
    page.keyboard.press("c")
    page.wait_for_selector("#compose-form")
    page.wait_for_function("() => document.activeElement && document.activeElement.id === 'compose-to'")
    typed = "Ann <ann@remote.test>, carl"
    page.keyboard.type(typed)
    page.keyboard.press("Tab")
    page.keyboard.type("Subject line")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#error-to")
    assert page.input_value("#compose-to") == typed
    assert "'carl' is not an email address" in page.inner_text("#error-to")
    check("compose with errors")

    # Settings: a wrong current password says so.
    page.goto(f"{live_server.url}/settings/")
    page.fill("#id_current", "not my password")
    page.fill("#id_new", "another long passphrase 7")
    page.fill("#id_confirm", "another long passphrase 7")
    page.focus("#id_confirm")
    page.keyboard.press("Enter")
    page.wait_for_selector("#id_current_error")
    assert page.inner_text("#id_current_error") == "Your current password is wrong."
    check("settings with errors")
    for path in ("/outbox/", "/addressbook/", "/rules/", "/settings/security/", "/nowhere/"):
        page.goto(live_server.url + path)
        check(path)
    assert not problems, problems
    assert watch.outside == []
    assert not [e for e in watch.console_errors if "Content Security Policy" in e]
    assert django_settings.DEBUG is False
