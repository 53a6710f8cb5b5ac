"""Issue 17 in Debian's Chromium: quota, Empty Trash, notifications, contacts."""

import os

import pytest

from mailcore.models import FolderRole, Mailbox, Message
from mailcore.services.delivery import deliver_message
from mailcore.services.folders import get_folder_by_role, move_messages
from tests.factories import make_message
from tests.webmail.test_browser import Watch, browser, login  # noqa: F401 (fixture)

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


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
    assert len(dialogs) == 2
