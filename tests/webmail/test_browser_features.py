"""Issue 17 in Debian's Chromium: quota, Empty Trash, notifications, contacts, rich text,
print and previews."""

import os
import time
from pathlib import Path

import pytest

from mailcore.models import FolderRole, Mailbox, Message
from mailcore.services.delivery import deliver_message
from mailcore.services.folders import get_folder_by_role, move_messages
from tests.factories import make_message
from tests.webmail.test_browser import browser, login  # noqa: F401 (fixture)

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def wait_until(page, expression: str, timeout: float = 10.0):
    """Poll a JavaScript expression (wait_for_function would need eval, which the CSP forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(100)


def test_quota_meter_and_empty_trash_after_confirming(browser, live_server, mailbox):  # noqa: F811
    Mailbox.objects.filter(pk=mailbox.pk).update(quota=5 * 1024 * 1024)
    for i in range(3):
        deliver_message(make_message(subject=f"junk mail {i}", body="y" * 50_000),
                        [mailbox.address])
    inbox = get_folder_by_role(mailbox, FolderRole.INBOX)
    trash = get_folder_by_role(mailbox, FolderRole.TRASH)
    move_messages(inbox, [m.uid for m in Message.objects.filter(folder=inbox)], trash)
    page = browser.new_page()
    dialogs, answers, errors = [], [False, True], []
    page.on("dialog", lambda d: (dialogs.append(d.message),
                                 d.accept() if answers.pop(0) else d.dismiss()))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    login(page, live_server)
    assert page.locator("#quota-meter").count() == 1
    assert "of 5.0\xa0MB used" in page.inner_text("#quota")
    page.click(f'#folder-list [data-folder="{trash.pk}"] a')
    page.wait_for_selector("#empty-folder")
    # First refuse the confirmation: nothing goes.
    page.click("#empty-folder")
    page.wait_for_timeout(300)
    assert dialogs == ["Delete all 3 messages in Trash for good?"]
    assert Message.objects.filter(folder=trash).count() == 3
    page.click("#empty-folder")
    page.wait_for_selector(".empty")
    assert Message.objects.filter(folder=trash).count() == 0
    assert "Deleted 3 messages for good." in page.inner_text("#toast")
    assert "0\xa0bytes of" in page.inner_text("#quota")
    assert len(dialogs) == 2 and errors == []


# Wraps the real Notification constructor (it still runs) to record what the page showed.
RECORD_NOTIFICATIONS = """
(() => {
  const Real = window.Notification;
  window.__shown = [];
  function Recording(title, options) {
    window.__shown.push([title, (options || {}).body]);
    return new Real(title, options);
  }
  Object.defineProperty(Recording, "permission", { get: () => Real.permission });
  Recording.requestPermission = Real.requestPermission.bind(Real);
  window.Notification = Recording;
})();
"""


def test_unread_count_in_title_and_favicon_and_a_notification_for_new_mail(
    browser, live_server, mailbox, settings  # noqa: F811
):
    settings.CORREIO_WEBMAIL_POLL_SECONDS = 1
    deliver_message(make_message(subject="first"), [mailbox.address])
    context = browser.new_context()
    context.grant_permissions(["notifications"], origin=live_server.url)
    context.add_init_script(RECORD_NOTIFICATIONS)
    page = context.new_page()
    errors = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    login(page, live_server)
    wait_until(page, "document.title.startsWith('(1) ')")
    assert page.get_attribute("#favicon", "data-count") == "1"
    assert page.get_attribute("#favicon", "href").startswith("data:image/png;base64,")
    # Switch notifications on in the settings (its own form), then come back.
    page.goto(f"{live_server.url}/settings/")
    page.check("#id_notify_new_mail")
    page.click("#notify-settings button[type=submit]")
    page.wait_for_selector("text=Notifications on.")
    page.goto(f"{live_server.url}/")
    page.wait_for_selector("#message-list")
    assert page.evaluate("window.__shown") == []  # mail already there is not announced
    deliver_message(make_message(subject="Lunch on Friday?", sender="Carol <carol@remote.test>"),
                    [mailbox.address])
    wait_until(page, "document.title.startsWith('(2) ')")
    wait_until(page, "window.__shown.length === 1")
    assert page.evaluate("window.__shown") == [["Carol", "Lunch on Friday?"]]
    assert page.get_attribute("#favicon", "data-count") == "2"
    # Reading one lowers the count everywhere.
    page.click("#rows .row.unread a.open >> nth=0")
    wait_until(page, "document.title.startsWith('(1) ')")
    assert errors == []
    context.close()


VCARD = ("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Tia Tea\r\nEMAIL:tia@remote.test\r\n"
         "CATEGORIES:Tea club\r\nEND:VCARD\r\n"
         "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Tom Tea\r\nEMAIL:tom@remote.test\r\n"
         "CATEGORIES:Tea club\r\nEND:VCARD\r\n")


def test_address_book_import_refusal_and_group_autocomplete_in_compose(
    browser, live_server, mailbox, tmp_path  # noqa: F811
):
    page = browser.new_page()
    errors = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    login(page, live_server)
    page.click("#contacts-link")
    page.wait_for_selector("#vcard-import")
    page.fill("#id_name", "Ann Lee")
    page.fill("#id_emails", "ann@remote.test")
    page.fill("#id_groups", "Family")
    page.click("#contact-form button[type=submit]")
    page.wait_for_selector("text=Saved Ann Lee.")
    notcard = tmp_path / "holiday.jpg"
    notcard.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF")
    page.set_input_files("#id_file", str(notcard))
    page.click("#vcard-import button[type=submit]")
    page.wait_for_selector("#vcard-import .form-error")
    assert "not a vCard" in page.inner_text("#vcard-import .form-error")
    assert page.locator("#contacts tbody tr").count() == 1  # nothing else lost
    cards = tmp_path / "club.vcf"
    cards.write_text(VCARD)
    page.set_input_files("#id_file", str(cards))
    page.click("#vcard-import button[type=submit]")
    page.wait_for_selector("text=Imported 2 new")
    assert page.locator("#contacts tbody tr").count() == 3
    # Autocomplete in compose offers the group, and choosing it writes every member.
    page.goto(f"{live_server.url}/compose/")
    page.wait_for_selector("#compose-to")
    page.type("#compose-to", "tea c")
    page.wait_for_selector("#suggest-to li")
    assert page.inner_text("#suggest-to li >> nth=0") == "Group: Tea club (2)"
    page.click("#suggest-to li >> nth=0")
    assert page.input_value("#compose-to") == "Tia Tea <tia@remote.test>, Tom Tea <tom@remote.test>, "
    # "New message to group" from the address book.
    page.goto(f"{live_server.url}/addressbook/")
    page.click("text=New message to Family")
    page.wait_for_selector("#compose-to")
    assert page.input_value("#compose-to") == "Ann Lee <ann@remote.test>"
    # The refused import answered 400 (a form error); nothing else failed.
    assert [e for e in errors if "400 (Bad Request)" not in e] == [] and len(errors) == 1


def test_rich_text_editor_formats_refuses_a_huge_picture_and_sends_alternative(
    browser, live_server, mailbox, make_mailbox, tmp_path  # noqa: F811
):
    import email
    from email import policy

    from mailcore.blobstore import load_blob
    from mailcore.models import OutboundMessage
    from webmail.models import WebmailSettings

    make_mailbox("bob@example.test")
    WebmailSettings.objects.create(mailbox=mailbox, compose_html=True)
    page = browser.new_page()
    errors = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    login(page, live_server)
    page.click("#compose-button")
    page.wait_for_selector("#rich-editor[data-ready='1']")
    assert not page.is_visible("#compose-body")
    page.fill("#compose-to", "bob@example.test")
    page.fill("#compose-subject", "Formatted")
    page.click("#rich-body .ql-editor")
    page.keyboard.press("Control+b")
    page.keyboard.type("Bold words")
    page.keyboard.press("Control+b")
    page.keyboard.type(" and plain.")
    # A 30 MB picture is refused with a message; what was typed stays.
    huge = tmp_path / "huge.png"
    huge.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * (30 * 1024 * 1024))
    with page.expect_file_chooser() as chooser:
        page.click(".ql-toolbar .ql-image")
    chooser.value.set_files(str(huge))
    page.wait_for_selector("#rich-error:not([hidden])")
    assert "is 30 MB; pictures in the text may be up to 5 MB" in page.inner_text("#rich-error")
    assert "Bold words and plain." in page.inner_text("#rich-body")
    page.click("#send-button")
    page.wait_for_selector("#undo-send")
    out = email.message_from_bytes(load_blob(OutboundMessage.objects.get().blob_id),
                                   policy=policy.default)
    assert out.get_content_type() == "multipart/alternative"
    plain, html = out.get_payload()
    assert plain.get_content().startswith("*Bold words* and plain.")
    assert "<strong>Bold words</strong> and plain." in html.get_content()
    assert errors == []


def test_picture_preview_shows_and_the_print_view_prints_without_errors(
    browser, live_server, mailbox  # noqa: F811
):
    import base64

    from django.conf import settings as django_settings

    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAcCBlCwAAAABJRU5ErkJggg==")
    deliver_message(make_message(subject="Holiday photo", body="See attached.\n",
                                 attachments=[("beach.png", png, "image/png"),
                                              ("plan.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")]),
                    [mailbox.address])
    message = Message.objects.get(subject="Holiday photo")
    page = browser.new_page()
    errors = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    login(page, live_server)
    page.click("#rows .row a.open >> nth=0")
    page.wait_for_selector(".preview-image img")
    wait_until(page, "document.querySelector('.preview-image img').naturalWidth === 1")
    assert page.get_attribute(".preview-pdf iframe", "sandbox") == ""
    # The print view, as the Print link opens it, but without the print dialog.
    printed = browser.new_page()
    printed.on("console", lambda m: m.type == "error" and errors.append(m.text))
    printed.goto(f"{live_server.url}/login/")
    printed.context.add_cookies(page.context.cookies())
    printed.goto(f"{live_server.url}/m/{message.pk}/print/")
    assert "See attached." in printed.inner_text(".print-body")
    assert "beach.png" in printed.inner_text(".print-attachments")
    printed.emulate_media(media="print")
    assert not printed.is_visible("#print-now")
    shots = Path(django_settings.BASE_DIR) / "var" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    printed.screenshot(path=str(shots / "print-view.png"), full_page=True)
    assert errors == []


def test_conversation_list_groups_opens_stacked_and_archives_the_whole_conversation(
    browser, live_server, mailbox  # noqa: F811
):
    from mailcore.services.delivery import append_message
    from webmail.models import WebmailSettings

    WebmailSettings.objects.create(mailbox=mailbox, conversation_list=True)
    for i in range(3):
        refs = "<trip-0@x.test>" if i else None
        deliver_message(make_message(subject=f"{'Re: ' if i else ''}Trip", body=f"message {i}\n",
                                     sender=f"Friend{i} <f{i}@remote.test>",
                                     message_id=f"<trip-{i}@x.test>", in_reply_to=refs,
                                     references=refs,
                                     date=f"Mon, 01 Dec 2025 10:0{i}:00 +0000"),
                        [mailbox.address])
    append_message(get_folder_by_role(mailbox, FolderRole.SENT),
                   make_message(subject="Re: Trip", sender=f"Demo <{mailbox.address}>",
                                message_id="<trip-me@example.test>",
                                in_reply_to="<trip-0@x.test>", references="<trip-0@x.test>",
                                date="Mon, 01 Dec 2025 11:00:00 +0000"), flags=["\\Seen"])
    deliver_message(make_message(subject="Alone", date="Mon, 01 Dec 2025 09:00:00 +0000"),
                    [mailbox.address])
    page = browser.new_page()
    errors = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    login(page, live_server)
    assert page.locator("#rows .row").count() == 2
    first = page.locator("#rows .row", has_text="Trip")
    assert first.get_attribute("data-count") == "4"
    assert first.locator(".from").inner_text().startswith("me, Friend2, Friend1, Friend0")
    first.locator("a.open").click()
    page.wait_for_selector(".conversation-reader")
    assert page.locator(".conversation-message").count() == 4
    assert page.locator(".conversation-message[open]").count() == 1
    page.click(".conversation-message >> nth=0 >> summary")
    assert page.locator(".conversation-message[open]").count() == 2
    page.click("#conversation-actions button[value=archive]")
    wait_until(page, "document.querySelectorAll('#rows .row').length === 1")
    inbox = get_folder_by_role(mailbox, FolderRole.INBOX)
    assert list(Message.objects.filter(folder=inbox).values_list("subject", flat=True)) == ["Alone"]
    assert errors == []


def test_choosing_another_from_address_swaps_its_signature(
    browser, live_server, mailbox  # noqa: F811
):
    from mailcore.models import Alias
    from webmail.identities import save_identity
    from webmail.models import WebmailSettings

    Alias.objects.create(domain=mailbox.domain, local_part="sales", destinations=mailbox.address)
    WebmailSettings.objects.create(mailbox=mailbox, signature="Demo sig")
    save_identity(mailbox, "sales@example.test", display_name="ACME Sales",
                  signature="Sales team\nACME", signature_html="")
    page = browser.new_page()
    errors = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    login(page, live_server)
    page.click("#compose-button")
    page.wait_for_selector("#compose-from")
    page.fill("#compose-body", "Hello there,\n\n-- \nDemo sig\n")
    page.select_option("#compose-from", "sales@example.test")
    body = page.input_value("#compose-body")
    assert body == "Hello there,\n\n-- \nSales team\nACME\n"
    assert "ACME Sales <sales@example.test>" in page.inner_text("#compose-from")
    page.select_option("#compose-from", "demo@example.test")
    assert page.input_value("#compose-body") == "Hello there,\n\n-- \nDemo sig\n"
    assert errors == []
