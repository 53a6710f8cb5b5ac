"""Writing mail end to end in Debian's Chromium (Playwright, never a downloaded browser): alice
writes to bob with an attachment, bob sees it arrive live and replies, alice sees the reply in
the conversation and "delivered" on her sent message; Undo within the window leaves nothing in
the queue; a send-later message goes at its time. Screenshots under var/screenshots/.

The worker's part (the delivery pass over due queue entries) is run here as the plain service
function, as Celery would run it, once the hold is over (made over by moving it into the past
rather than waiting)."""

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from mailcore.models import Message, OutboundMessage, OutboundRecipient
from mailcore.services.outbound.admin import due_message_ids
from mailcore.services.outbound.relay import deliver_outbound
from tests.webmail.test_browser import ARGS, CHROMIUM, SHOTS, Watch, login
from webmail.models import WebmailSettings

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def alice(make_mailbox):
    mailbox = make_mailbox("alice@example.test", display_name="Alice Example")
    WebmailSettings.objects.create(mailbox=mailbox, undo_seconds=5, signature="Alice")
    return mailbox


@pytest.fixture
def bob(make_mailbox):
    mailbox = make_mailbox("bob@example.test", display_name="Bob Builder")
    WebmailSettings.objects.create(mailbox=mailbox, undo_seconds=5)
    return mailbox


def run_due_deliveries(release=False) -> int:
    """What the Celery worker does with due queue entries; ``release`` ends every hold now."""
    if release:
        past = timezone.now() - timedelta(seconds=1)
        OutboundMessage.objects.filter(finished=False).update(hold_until=past)
        OutboundRecipient.objects.filter(attempts=0).update(next_attempt=past)
    ids = due_message_ids()
    for message_id in ids:
        deliver_outbound(message_id)
    return len(ids)


def test_alice_writes_to_bob_with_an_attachment_he_replies_and_she_sees_it_delivered(
    browser, live_server, alice, bob, settings
):
    settings.CORREIO_WEBMAIL_POLL_SECONDS = 1
    from playwright.sync_api import expect

    plan = Path(tempfile.mkdtemp()) / "plan ü.txt"
    plan.write_text("step one\nstep two\n")

    apage = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    awatch = Watch(apage, live_server.url)
    login(apage, live_server, alice.address)
    bpage = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    bwatch = Watch(bpage, live_server.url)
    login(bpage, live_server, bob.address)

    # Alice writes: c opens the compose pane.
    apage.locator("body").click(position={"x": 5, "y": 400})
    apage.keyboard.press("c")
    apage.wait_for_selector("#compose-form")
    apage.fill("#compose-to", "Bob Builder <bob@example.test>")
    apage.fill("#compose-subject", "The plan")
    apage.locator("#compose-body").press("Control+Home")
    apage.keyboard.type("Hi Bob, the plan is attached.")
    apage.set_input_files("#compose-files", str(plan))
    apage.wait_for_selector("#compose-attachments .attachment:has-text('plan ü.txt')")
    # The draft is saved on its own after a pause in typing.
    apage.wait_for_selector("#save-status:has-text('Draft saved')", timeout=10000)
    assert Message.objects.filter(folder__mailbox=alice, folder__role="drafts").count() == 1
    SHOTS.mkdir(parents=True, exist_ok=True)
    apage.screenshot(path=str(SHOTS / "compose.png"), caret="initial")

    apage.keyboard.press("Control+Enter")
    apage.wait_for_selector("#undo-send")
    assert OutboundMessage.objects.count() == 1
    assert Message.objects.filter(folder__mailbox=alice, folder__role="drafts").count() == 0

    # The undo window ends; the worker delivers; bob's open inbox shows it without a reload.
    assert run_due_deliveries(release=True) == 1
    bpage.wait_for_selector(".row:has-text('The plan')", timeout=10000)
    bpage.click(".row:has-text('The plan') .open")
    bpage.wait_for_selector("#reader .attachments a:has-text('plan ü.txt')")
    bpage.locator("body").click(position={"x": 5, "y": 400})
    bpage.keyboard.press("r")
    bpage.wait_for_selector("#compose-form")
    expect(bpage.locator("#compose-subject")).to_have_value("Re: The plan")
    expect(bpage.locator("#compose-to")).to_have_value("Alice Example <alice@example.test>")
    assert "> Hi Bob, the plan is attached." in bpage.input_value("#compose-body")
    bpage.locator("#compose-body").press("Control+Home")
    bpage.keyboard.type("Got it, thanks!")
    bpage.locator("#compose-body").press("Meta+Enter")
    bpage.wait_for_selector("#undo-send")
    assert run_due_deliveries(release=True) == 1
    original = Message.objects.get(folder__mailbox=bob, folder__role="inbox")
    assert original.answered

    # Alice sees the reply arrive and it sits in the conversation with her message.
    apage.wait_for_selector(".row:has-text('Re: The plan')", timeout=10000)
    apage.click(".row:has-text('Re: The plan') .open")
    apage.wait_for_selector("#reader .thread")
    conversation = apage.locator("#reader .thread li").all_inner_texts()
    assert len(conversation) == 2 and any("Sent" in item for item in conversation)

    # Her sent message shows the delivery status per recipient.
    apage.click("#reader .thread li:has-text('Sent') a")
    apage.wait_for_selector(".delivery-status")
    status = apage.locator(".delivery-status li[data-address='bob@example.test']")
    expect(status.locator(".state")).to_have_text("delivered")
    apage.screenshot(path=str(SHOTS / "delivery-status.png"), caret="initial")
    sent = Message.objects.get(folder__mailbox=alice, folder__role="sent")
    apage.goto(f"{live_server.url}/f/{sent.folder_id}/")
    expect(apage.locator(".row .delivery-badge").first).to_have_text("delivered")

    for watch in (awatch, bwatch):
        assert watch.outside == [] and watch.dialogs == []
        assert not [e for e in watch.console_errors if "Content Security Policy" in e]


def test_undo_within_the_window_brings_the_form_back_and_leaves_the_queue_empty(
    browser, live_server, alice, bob
):
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    watch = Watch(page, live_server.url)
    login(page, live_server, alice.address)
    page.click("#compose-button")
    page.wait_for_selector("#compose-form")
    page.fill("#compose-to", "bob@example.test")
    page.fill("#compose-subject", "Oops")
    page.fill("#compose-body", "I did not mean to send this yet.")
    page.click("#send-button")
    page.click("#undo-send")
    page.wait_for_selector("#compose-form")
    from playwright.sync_api import expect

    expect(page.locator("#compose-subject")).to_have_value("Oops")
    expect(page.locator("#compose-body")).to_have_value("I did not mean to send this yet.")
    assert OutboundMessage.objects.count() == 0 and OutboundRecipient.objects.count() == 0
    assert not Message.objects.filter(folder__mailbox=alice, folder__role="sent").exists()
    assert run_due_deliveries(release=True) == 0
    assert not Message.objects.filter(folder__mailbox=bob).exists()
    assert watch.outside == [] and watch.dialogs == []


def test_a_send_later_message_waits_in_the_outbox_and_goes_at_its_time(
    browser, live_server, alice, bob
):
    page = browser.new_context(viewport={"width": 1400, "height": 900},
                               timezone_id="America/Sao_Paulo").new_page()
    watch = Watch(page, live_server.url)
    login(page, live_server, alice.address)
    page.click("#compose-button")
    page.wait_for_selector("#compose-form")
    page.fill("#compose-to", "bob@example.test")
    page.fill("#compose-subject", "Tomorrow morning")
    page.fill("#compose-body", "Scheduled hello.")
    page.click(".send-later summary")
    # Two hours from now on the browser's clock (São Paulo, UTC-3), typed as it shows it.
    local = page.evaluate("""() => { const d = new Date(Date.now() + 2 * 3600 * 1000);
        const p = (n) => String(n).padStart(2, '0');
        return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`; }""")
    page.fill("#compose-send-at", local)
    page.click("#schedule-button")
    page.wait_for_selector("#toast:has-text('Scheduled for')")
    entry = OutboundMessage.objects.get()
    wait = entry.hold_until - timezone.now()
    assert timedelta(minutes=118) < wait < timedelta(minutes=121)

    page.click(".outbox-link a")
    page.wait_for_selector(f"#outbox-{entry.pk}:has-text('Tomorrow morning')")
    # Not before its time, even if the worker looks.
    assert run_due_deliveries() == 0
    assert not Message.objects.filter(folder__mailbox=bob).exists()
    page.close()  # the browser is gone; the queue still sends it
    assert run_due_deliveries(release=True) == 1
    assert Message.objects.get(folder__mailbox=bob, folder__role="inbox").subject == \
        "Tomorrow morning"
    assert OutboundRecipient.objects.get().state == "delivered"
    assert watch.outside == [] and watch.dialogs == []
