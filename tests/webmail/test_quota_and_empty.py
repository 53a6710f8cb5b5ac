"""The quota in the folder pane and Empty Trash / Empty Junk (issue 17, part 7)."""

import imaplib

from mailcore.models import ExpungedMessage, FolderRole, Mailbox, Message
from mailcore.services import folders as folder_service
from mailcore.services.folders import empty_folder, get_folder_by_role, move_messages
from mailcore.services.quota import usage
from tests.conftest import PASSWORD
from tests.webmail.conftest import HX


def _to_trash(mailbox, messages):
    inbox = get_folder_by_role(mailbox, FolderRole.INBOX)
    trash = get_folder_by_role(mailbox, FolderRole.TRASH)
    move_messages(inbox, [m.uid for m in messages], trash)
    return trash


def test_the_folder_pane_shows_the_quota_used(web, mailbox, deliver):
    Mailbox.objects.filter(pk=mailbox.pk).update(quota=10 * 1024 * 1024)
    deliver(body="x" * 600_000)
    used = usage(mailbox.pk)
    assert used.used > 600_000 and used.limit == 10 * 1024 * 1024
    html = web.get("/", follow=True).content.decode()
    assert 'id="quota-meter"' in html
    assert f'value="{used.used}"' in html
    assert f"({used.percent}%)" in html


def test_an_unlimited_mailbox_says_so(web, mailbox):
    Mailbox.objects.filter(pk=mailbox.pk).update(quota=0)
    html = web.get("/", follow=True).content.decode()
    assert "used (no limit)" in html and "quota-meter" not in html


def test_emptying_trash_removes_every_message_and_gives_the_bytes_back(web, mailbox, deliver,
                                                                       monkeypatch):
    monkeypatch.setattr(folder_service, "EMPTY_BATCH", 2)
    messages = [deliver(subject=f"old {i}") for i in range(5)]
    keep = deliver(subject="still in the inbox")
    trash = _to_trash(mailbox, messages)
    before = usage(mailbox.pk).used
    page = web.get(f"/f/{trash.pk}/").content.decode()
    assert 'id="empty-folder"' in page and "Delete all 5 messages in Trash for good?" in page
    response = web.post(f"/folders/{trash.pk}/empty/", **HX)
    assert response.status_code == 200 and response.headers["HX-Redirect"] == f"/f/{trash.pk}/"
    assert not Message.objects.filter(folder=trash).exists()
    assert ExpungedMessage.objects.filter(folder=trash).count() == 5
    assert Message.objects.filter(pk=keep.pk).exists()
    assert usage(mailbox.pk).used == before - sum(m.size for m in messages)
    trash.refresh_from_db()
    assert trash.message_count == 0 and trash.unseen_count == 0


def test_empty_is_refused_for_the_inbox_and_for_get_and_for_others(web, mailbox, deliver, other,
                                                                   client_for):
    message = deliver()
    inbox = get_folder_by_role(mailbox, FolderRole.INBOX)
    assert "empty-folder" not in web.get(f"/f/{inbox.pk}/").content.decode()
    assert web.get(f"/folders/{inbox.pk}/empty/").status_code == 405
    response = web.post(f"/folders/{inbox.pk}/empty/", follow=True)
    assert "Only Trash and Junk can be emptied." in response.content.decode()
    assert Message.objects.filter(pk=message.pk).exists()
    trash = _to_trash(mailbox, [message])
    assert client_for(other).post(f"/folders/{trash.pk}/empty/").status_code == 404
    assert Message.objects.filter(folder=trash).count() == 1


def test_a_message_arriving_after_the_empty_began_is_kept(mailbox, deliver, monkeypatch):
    trash = _to_trash(mailbox, [deliver(subject="old")])
    real = folder_service._expunge_rows

    def deliver_meanwhile(folder, rows, moved_to=None):
        result = real(folder, rows, moved_to)
        if not Message.objects.filter(subject="late").exists():
            _to_trash(mailbox, [deliver(subject="late")])
        return result

    monkeypatch.setattr(folder_service, "_expunge_rows", deliver_meanwhile)
    assert empty_folder(trash) == 1
    assert list(Message.objects.filter(folder=trash).values_list("subject", flat=True)) == ["late"]


def test_imap_sees_the_emptied_trash(mailbox, message_bytes, imap_listener):
    from mailcore.services.delivery import deliver_message

    deliver_message(message_bytes(subject="bin me"), [mailbox.address])
    inbox = get_folder_by_role(mailbox, FolderRole.INBOX)
    trash = _to_trash(mailbox, list(Message.objects.filter(folder=inbox)))
    empty_folder(trash)
    host, port = imap_listener
    with imaplib.IMAP4(host, port) as imap:
        imap.login(mailbox.address, PASSWORD)
        typ, data = imap.select("Trash")
        assert typ == "OK" and data == [b"0"]
