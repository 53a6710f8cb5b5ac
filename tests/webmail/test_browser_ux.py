"""The webmail for everyday use, in Debian's Chromium (Playwright, never a downloaded browser):
the keyboard (Enter on what has focus, focus into the form after Compose and Reply, shortcuts
never typing into a form), the layout (the conversation after the message, nothing wider than
a 390 px phone, 44 px touch targets, the toast clear of Send), reliable actions (Discard leaves
the form, every failed request says so, Send is disabled while it runs), the help dialog's
focus, times in the browser's zone, confirmation before deleting for good."""

import os
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from mailcore.models import Folder, Message
from mailcore.services.delivery import deliver_message
from tests.factories import make_message
from tests.webmail.test_browser import ARGS, CHROMIUM, SHOTS, Watch, login
from webmail.models import Composition

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1440, "height": 900}}


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


def active_id(page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


def test_enter_opens_what_has_focus_and_focus_lands_in_the_form_where_keys_only_type(
    browser, live_server, mailbox
):
    deliver_message(make_message(subject="First letter", body="one\n"), [mailbox.address])
    deliver_message(make_message(subject="Second letter", body="two\n"), [mailbox.address])
    page = browser.new_context(**DESKTOP).new_page()
    watch = Watch(page, live_server.url)
    login(page, live_server)

    # Enter on a focused message link opens it; on the Settings link it follows it.
    page.locator(".row .open", has_text="Second letter").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#reader .subject:has-text('Second letter')")
    page.locator(".account a", has_text="Settings").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/settings/")
    page.go_back()
    page.wait_for_load_state("networkidle")
    page.wait_for_selector("#reader .subject:has-text('Second letter')")

    # Enter on a focused folder link opens the folder.
    page.locator(".folder a", has_text="Sent").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#message-list h1:has-text('Sent')")
    page.locator(".folder a", has_text="Inbox").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#message-list h1:has-text('Inbox')")

    # r: the reply form takes the keys; "se" is text, not Flag and Archive.
    page.locator(".row .open", has_text="Second letter").click()
    page.wait_for_selector("#reader .subject:has-text('Second letter')")
    page.keyboard.press("r")
    page.wait_for_selector("#compose-form")
    page.wait_for_function("() => document.activeElement && document.activeElement.id === 'compose-body'")
    page.keyboard.type("se")
    assert page.input_value("#compose-body").startswith("se")
    second = Message.objects.get(subject="Second letter")
    assert not second.flagged and second.folder.role == "inbox"
    # Even on the form's own buttons, a letter is not a shortcut.
    page.locator("#send-button").focus()
    page.keyboard.press("e")
    page.keyboard.press("s")
    second.refresh_from_db()
    assert not second.flagged and second.folder.role == "inbox"

    # c (from the page, not the form): a new message, focus in To.
    page.locator("#discard-button").click()
    page.wait_for_selector("#compose-form", state="detached")
    page.locator(".row .open", has_text="First letter").focus()
    page.keyboard.press("c")
    page.wait_for_selector("#compose-form")
    page.wait_for_function("() => document.activeElement && document.activeElement.id === 'compose-to'")

    # Inside anything editable, single keys are text.
    page.locator("#discard-button").click()
    page.wait_for_selector("#compose-form", state="detached")
    page.evaluate("""() => { const d = document.createElement('div'); d.id = 'editable';
        d.contentEditable = 'true'; document.querySelector('#reader').append(d); d.focus(); }""")
    page.keyboard.type("es#")
    first = Message.objects.get(subject="First letter")
    assert not first.flagged and first.folder.role == "inbox"
    assert page.locator("#editable").inner_text() == "es#"
    assert watch.outside == []


def test_the_help_dialog_keeps_focus_and_gives_it_back(browser, live_server, mailbox):
    deliver_message(make_message(subject="Only one"), [mailbox.address])
    page = browser.new_context(**DESKTOP).new_page()
    login(page, live_server)
    page.locator(".row .open").focus()
    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    assert active_id(page) == "help-close"
    for _ in range(4):
        page.keyboard.press("Tab")
        assert page.evaluate("document.querySelector('#help').contains(document.activeElement)")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.querySelector('#help').contains(document.activeElement)")
    page.keyboard.press("Escape")
    assert not page.locator("#help").is_visible()
    assert page.evaluate("document.activeElement.classList.contains('open')")
    # Opening a message from the conversation or a reader link never drops focus to the page.
    page.keyboard.press("Enter")
    page.wait_for_selector("#reader .subject:has-text('Only one')")
    page.locator("#reader .source-links a", has_text="Show headers").click()
    page.wait_for_selector("#reader table.headers")
    # Focus is placed after htmx settles the swap, a moment after the new content appears.
    page.wait_for_function("() => document.activeElement && document.activeElement !== document.body",
                           timeout=5000)


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_the_conversation_comes_after_the_message_and_its_attachments(
    browser, live_server, mailbox, device
):
    deliver_message(make_message(subject="Plans", message_id="<t1@remote.test>"),
                    [mailbox.address])
    deliver_message(
        make_message(subject="Re: Plans", message_id="<t2@remote.test>",
                     in_reply_to="<t1@remote.test>", references="<t1@remote.test>",
                     html="<p>" + "Long text. " * 400 + "</p>",
                     attachments=[("plan.pdf", b"%PDF-1.4 " * 300, "application/pdf"),
                                  ("notes.txt", b"notes " * 50, "text/plain")]),
        [mailbox.address])
    page = browser.new_context(**(PHONE if device == "phone" else DESKTOP)).new_page()
    login(page, live_server)
    page.locator(".row .open", has_text="Re: Plans").click()
    page.wait_for_selector("#reader .thread")
    frame = page.locator("iframe.body-frame").bounding_box()
    attachments = page.locator("#reader .attachments").bounding_box()
    links = page.locator("#reader .source-links").bounding_box()
    thread = page.locator("#reader .thread").bounding_box()
    # In document coordinates: the reader scrolls, so compare positions inside it.
    assert frame["y"] + frame["height"] <= attachments["y"] + 0.5
    assert attachments["y"] + attachments["height"] <= links["y"] + 0.5
    assert links["y"] + links["height"] <= thread["y"] + 0.5
    assert frame["height"] >= 300


def test_discard_leaves_the_form_and_a_lost_draft_is_said_not_silently_lost(
    browser, live_server, mailbox
):
    page = browser.new_context(**DESKTOP).new_page()
    login(page, live_server)
    statuses = []
    page.on("response", lambda r: statuses.append((r.status, r.url)))
    page.click("#compose-button")
    page.wait_for_selector("#compose-form")
    page.fill("#compose-to", "carol@remote.test")
    page.fill("#compose-body", "Some words")
    page.click("#discard-button")
    page.wait_for_selector("#compose-form", state="detached")
    page.wait_for_selector("#toast:has-text('Draft discarded.')")
    page.keyboard.type("more typing")
    time.sleep(3.5)  # longer than the autosave delay
    assert not [s for s in statuses if s[0] >= 400], statuses
    assert Composition.objects.filter(mailbox=mailbox).count() == 0

    # From the whole-page form (no list beside it), Discard goes to the Drafts folder.
    page.goto(f"{live_server.url}/compose/")
    page.wait_for_selector("#compose-form")
    page.click("#discard-button")
    page.wait_for_selector("#message-list h1:has-text('Drafts')")
    assert "/compose/" not in page.url

    # The draft vanishes behind the form's back (another tab discarded it): Send says so.
    page.click("#compose-button")
    page.wait_for_selector("#compose-form")
    page.fill("#compose-to", "carol@remote.test")
    page.fill("#compose-body", "Important words")
    Composition.objects.filter(mailbox=mailbox).delete()
    page.click("#send-button")
    alert = page.locator("#alerts [role=alert], #alerts.alert-region .toast").first
    alert.wait_for()
    assert "no longer exists" in page.locator("#alerts").inner_text()
    assert page.input_value("#compose-body") == "Important words"
    assert "Not sent" in page.locator("#save-status").inner_text()
    assert not page.locator("#send-button").is_disabled()


def test_failed_requests_show_an_alert_and_send_is_disabled_while_it_runs(
    browser, live_server, mailbox
):
    deliver_message(make_message(subject="Target"), [mailbox.address])
    page = browser.new_context(**DESKTOP).new_page()
    login(page, live_server)

    # A server error and a dead network both say something.
    page.route("**/actions/", lambda route: route.fulfill(status=500, body="boom"))
    page.locator(".row input.select").check()
    page.click("#list-form button[value=flag]")
    page.wait_for_selector("#alerts:has-text('server failed')")
    assert page.locator("#alerts").get_attribute("role") == "alert"
    page.unroute("**/actions/")
    page.route("**/actions/", lambda route: route.abort())
    page.click("#list-form button[value=flag]")
    page.wait_for_selector("#alerts:has-text('cannot be reached')")
    page.unroute("**/actions/")

    # Folder errors and successes are shown.
    page.fill("#new-folder-name", "Projects")
    page.click(".new-folder button")
    page.wait_for_selector("#toast:has-text('Created Projects.')")
    page.fill("#new-folder-name", "Projects")
    page.click(".new-folder button")
    page.wait_for_selector("#toast [role=alert]:has-text('already exists')")
    page.fill("#new-folder-name", "INBOX")
    page.click(".new-folder button")
    page.wait_for_selector("#toast [role=alert]")
    assert Folder.objects.filter(mailbox=mailbox, name="Projects").count() == 1

    # Send is disabled (and says so) until the answer comes.
    page.click("#compose-button")
    page.wait_for_selector("#compose-form")
    page.fill("#compose-to", "")
    page.fill("#compose-body", "Slow")

    def slow(route):
        time.sleep(1.0)
        route.continue_()

    page.route("**/compose/*/", slow)
    page.click("#send-button")
    # Checked inside the page, at one moment: the route handler's sleep holds Playwright's own
    # thread, so a separate read could come after the answer has already re-enabled Send.
    page.wait_for_function(
        "() => { const b = document.querySelector('#send-button');"
        " return b.disabled && b.textContent.trim() === 'Sending…'; }"
    )
    page.wait_for_selector(".form-errors")  # no recipient: the form comes back
    assert not page.locator("#send-button").is_disabled()


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_the_toast_never_covers_send(browser, live_server, mailbox, device):
    page = browser.new_context(**(PHONE if device == "phone" else DESKTOP)).new_page()
    login(page, live_server)
    page.click("#compose-button")
    page.wait_for_selector("#compose-form")
    page.fill("#compose-to", "carol@remote.test")
    page.click("button[value=save]")
    page.wait_for_selector("#toast .toast, #save-status:has-text('Saved')")
    toast = page.locator("#toast .toast")
    if toast.count() == 0:  # a saved draft only says so in the form: force a toast
        page.evaluate("""() => { const t = document.createElement('div'); t.className = 'toast';
            t.textContent = 'A rather long notice that stays on screen for a while';
            document.querySelector('#toast').append(t); }""")
    send = page.locator("#send-button")
    send.scroll_into_view_if_needed()
    a = page.locator("#toast .toast").first.bounding_box()
    b = send.bounding_box()
    overlap = not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                   or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])
    assert not overlap, (a, b)


def test_times_are_in_the_browsers_zone_and_the_list_and_reader_agree(
    browser, live_server, mailbox
):
    deliver_message(make_message(subject="When", date="Mon, 01 Jan 2024 00:00:00 +0000"),
                    [mailbox.address])
    message = Message.objects.get(subject="When")
    context = browser.new_context(timezone_id="Asia/Tokyo", **DESKTOP)
    page = context.new_page()
    login(page, live_server)
    page.reload()  # the zone cookie is set by the first page the browser loads
    local = message.internal_date.astimezone(ZoneInfo("Asia/Tokyo"))
    row_time = page.locator(".row .date").inner_text()
    assert row_time in (local.strftime("%H:%M"), local.strftime("%d %b").lstrip("0"),
                        local.strftime("%Y-%m-%d"))
    page.locator(".row .open").click()
    reader_time = page.locator("#reader .meta time").inner_text()
    assert reader_time == local.strftime("%a, %d %b %Y %H:%M")
    assert datetime.fromisoformat(
        page.locator("#reader .meta time").get_attribute("datetime")) == message.internal_date


def test_deleting_from_trash_asks_first(browser, live_server, mailbox):
    deliver_message(make_message(subject="Rubbish"), [mailbox.address])
    message = Message.objects.get(subject="Rubbish")
    trash = Folder.objects.get(mailbox=mailbox, role="trash")
    page = browser.new_context(**DESKTOP).new_page()
    login(page, live_server)
    page.locator(".row input.select").check()
    page.click("#list-form button[value=delete]")
    page.wait_for_selector("#toast .undo")
    page.goto(f"{live_server.url}/f/{trash.pk}/")
    answers = iter([False, True])
    asked = []

    def answer(dialog):
        asked.append(dialog.message)
        dialog.accept() if next(answers) else dialog.dismiss()

    page.on("dialog", answer)
    page.locator(".row input.select").check()
    page.click("#list-form button[value=delete]")
    page.wait_for_timeout(500)
    assert Message.objects.filter(pk__gt=message.pk - 1, folder=trash).count() == 1
    page.click("#list-form button[value=delete]")
    page.wait_for_selector("#toast:has-text('for good')")
    assert Message.objects.filter(folder=trash).count() == 0
    assert len(asked) == 2 and "cannot be undone" in asked[0]


def test_no_page_is_wider_than_a_phone_and_targets_are_44px(browser, live_server, mailbox):
    for i in range(3):
        deliver_message(
            make_message(subject=f"A rather long subject line number {i} that goes on",
                         sender="Someone With A Long Name <someone.with.a.long.name@remote.test>",
                         attachments=[("a-file-with-a-long-name.pdf", b"x" * 10, "application/pdf")]),
            [mailbox.address])
    page = browser.new_context(**PHONE).new_page()
    login(page, live_server)
    message = Message.objects.filter(mailbox=mailbox).first()
    urls = ["/", f"/m/{message.pk}/", "/compose/", "/settings/", "/outbox/"]
    for url in urls:
        page.goto(live_server.url + url)
        page.wait_for_load_state("networkidle")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"phone-{url.strip('/').replace('/', '-') or 'inbox'}.png"))
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (url, width)
        if url == "/":
            header = page.locator(".topbar").bounding_box()
            assert header["height"] <= 112, header
            # Nothing in the header is cut off at the screen's edge (Sign out was, once
            # Contacts and Rules joined it); those links live in the folder pane on a phone.
            sign_out = page.locator(".account .link-button").bounding_box()
            assert sign_out["x"] + sign_out["width"] <= 390, sign_out
            assert page.locator(".phone-links a", has_text="Settings").count() == 1
            small = page.evaluate("""() => Array.from(document.querySelectorAll(
                '.topbar button, .topbar a, .topbar input, .topbar select, .toolbar button,'
                + ' .toolbar select, .row .open'))
                .filter(e => e.offsetParent !== null)
                .map(e => [e.id || e.className || e.textContent, e.getBoundingClientRect().height])
                .filter(([, h]) => h < 44)""")
            assert small == [], small
            boxes = page.evaluate("""() => Array.from(document.querySelectorAll(
                'input[type=checkbox]')).filter(e => e.offsetParent !== null)
                .map(e => e.getBoundingClientRect().height)""")
            assert boxes and min(boxes) >= 24, boxes  # 24 px with a 10 px margin: 44 px


def test_newsletter_styles_apply_in_the_frame_and_a_deep_message_opens_quickly(
    browser, live_server, mailbox
):
    deliver_message(make_message(subject="Styled news", html=(
        "<style>.headline{color:rgb(200, 0, 0);background:url(https://evil.invalid/t.gif)}"
        "@import url(https://evil.invalid/x.css);</style>"
        '<h1 class="headline">Big news</h1><a id="rel" href="/logout/">relative</a>')),
        [mailbox.address])
    deliver_message(make_message(subject="Deep", html="<div>" * 50000 + "bottom" + "</div>" * 50000),
                    [mailbox.address])
    page = browser.new_context(**DESKTOP).new_page()
    watch = Watch(page, live_server.url)
    login(page, live_server)
    start = time.perf_counter()
    page.locator(".row .open", has_text="Styled news").click()
    frame = page.frame_locator("iframe.body-frame")
    frame.locator("h1.headline").wait_for()
    small = time.perf_counter() - start
    color = frame.locator("h1.headline").evaluate("e => getComputedStyle(e).color")
    assert color == "rgb(200, 0, 0)"
    assert frame.locator("#rel").get_attribute("href") is None
    start = time.perf_counter()
    page.locator(".row .open", has_text="Deep").click()
    page.frame_locator("iframe.body-frame").locator("text=bottom").wait_for()
    elapsed = time.perf_counter() - start
    # Within 2 s; the machine's own slowness (a small message's time) is not the message's.
    assert elapsed < 2.0 + max(0.0, small - 0.5), (elapsed, small)
    assert watch.outside == []


def test_older_messages_load_on_scroll_the_selection_stays_and_the_title_counts_unread(
    browser, live_server, mailbox, settings
):
    settings.CORREIO_WEBMAIL_PAGE_SIZE = 5
    for i in range(12):
        deliver_message(make_message(subject=f"Message number {i:02d}"), [mailbox.address])
    page = browser.new_context(**DESKTOP).new_page()
    login(page, live_server)
    assert page.title().startswith("(12) Inbox")
    # The "older" row coming into view inside the list pane (which scrolls, not the page)
    # loads the next page by itself, until the pane is full or the folder ends.
    for _ in range(3):
        page.locator("#message-list").evaluate("e => e.scrollTop = e.scrollHeight")
        page.wait_for_timeout(400)
    page.wait_for_function("() => document.querySelectorAll('#rows .row').length === 12")
    # Marking two as read keeps them selected, and the title follows the count.
    boxes = page.locator("#rows input.select")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.click("#list-form button[value=read]")
    page.wait_for_function("() => document.title.startsWith('(10) ')")
    assert boxes.nth(0).is_checked() and boxes.nth(1).is_checked()


def test_a_file_over_the_limit_is_refused_before_it_is_uploaded(browser, live_server, mailbox,
                                                               settings, tmp_path):
    settings.CORREIO_MAX_MESSAGE_SIZE = 200 * 1024
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 300 * 1024)
    page = browser.new_context(**DESKTOP).new_page()
    login(page, live_server)
    posts = []
    page.on("request", lambda r: r.method == "POST" and "/attach/" in r.url and posts.append(r.url))
    page.click("#compose-button")
    page.wait_for_selector("#compose-form")
    page.set_input_files("#compose-files", str(big))
    page.wait_for_selector("#uploading .form-error")
    assert "too large" in page.locator("#uploading .form-error").inner_text()
    assert posts == []
