"""The conversation list (issue 17, part 1): rows grouped by thread across folders, Sent
included, counts and senders newest first, keyset pages holding each conversation once, a
conversation opened stacked with the newest open, and actions on whole conversations."""

import re

import pytest

from mailcore.models import FolderRole, Message
from mailcore.services.delivery import append_message
from mailcore.services.folders import get_folder_by_role
from tests.factories import make_message
from tests.webmail.conftest import HX
from webmail.conversations import conversation_page
from webmail.models import WebmailSettings


@pytest.fixture
def grouped(mailbox):
    return WebmailSettings.objects.create(mailbox=mailbox, conversation_list=True)


def thread(deliver, mailbox, n, tag, *, hour=10, sent_reply=True):
    """A conversation: ``n`` messages from others, and our reply in Sent."""
    first = f"<{tag}-0@x.test>"
    rows = []
    for i in range(n):
        refs = first if i else None
        rows.append(deliver(raw=make_message(
            subject=f"{'Re: ' if i else ''}Topic {tag}", message_id=f"<{tag}-{i}@x.test>",
            sender=f"Person{i} {tag} <p{i}.{tag}@remote.test>", in_reply_to=refs,
            references=refs, date=f"Mon, 01 Dec 2025 {hour:02d}:{i:02d}:00 +0000")))
    if sent_reply:
        sent = get_folder_by_role(mailbox, FolderRole.SENT)
        append_message(sent, make_message(
            subject=f"Re: Topic {tag}", sender=f"Demo <{mailbox.address}>", to="x@remote.test",
            message_id=f"<{tag}-me@example.test>", in_reply_to=first, references=first,
            date=f"Mon, 01 Dec 2025 {hour:02d}:59:00 +0000"), flags=["\\Seen"])
    return rows


def test_the_inbox_shows_one_row_per_conversation_with_counts_and_senders(
        web, mailbox, deliver, grouped):
    thread(deliver, mailbox, 3, "a", hour=10)
    thread(deliver, mailbox, 1, "b", hour=11, sent_reply=False)
    inbox = get_folder_by_role(mailbox, FolderRole.INBOX)
    html = web.get(f"/f/{inbox.pk}/").content.decode()
    rows = re.findall(r'<li id="row-[^"]+" class="row conversation[^"]*" data-id="\d+" '
                      r'data-count="(\d+)"', html)
    assert rows == ["1", "4"]  # newest conversation first; 3 received + our reply in Sent
    assert "me, Person2, Person1, Person0" in html
    assert 'name="conversations" value="1"' in html


def test_pages_hold_each_conversation_once(web, mailbox, deliver, grouped, settings):
    settings.CORREIO_WEBMAIL_PAGE_SIZE = 2
    for k in range(5):
        thread(deliver, mailbox, 2, f"t{k}", hour=10 + k, sent_reply=False)
    inbox = get_folder_by_role(mailbox, FolderRole.INBOX)
    seen, cursor = [], None
    for _ in range(5):
        page = conversation_page(inbox, cursor)
        seen += [m.thread_id for m in page.messages]
        cursor = page.next_cursor
        if not cursor:
            break
    assert len(seen) == 5 and len(set(seen)) == 5


def test_a_conversation_ending_a_page_does_not_start_the_next_one_again(
        web, mailbox, deliver, grouped, settings):
    # The next page begins with older messages of the page's last conversation: the first of
    # them is found shadowed by a newer one, and so must be the rest.
    settings.CORREIO_WEBMAIL_PAGE_SIZE = 2
    for k in range(5):
        thread(deliver, mailbox, 4, f"t{k}", hour=10 + k, sent_reply=False)
    inbox = get_folder_by_role(mailbox, FolderRole.INBOX)
    seen, cursor, pages = [], None, 0
    while pages < 10:
        page = conversation_page(inbox, cursor)
        pages += 1
        seen += [m.thread_id for m in page.messages]
        cursor = page.next_cursor
        if not cursor:
            break
    assert len(seen) == 5 and len(set(seen)) == 5
    last = web.get(f"/f/{inbox.pk}/", {"before": page.cursor, "rows": "1"}, **HX)
    assert last.content.decode().count('class="row conversation') == len(page.messages)


def test_opening_a_conversation_stacks_it_newest_open_and_marks_it_read(
        web, mailbox, deliver, grouped):
    rows = thread(deliver, mailbox, 3, "c")
    response = web.get(f"/m/{rows[-1].pk}/conversation/", **HX)
    html = response.content.decode()
    assert html.count('class="conversation-message"') == 4
    assert html.count(" open>") == 1
    opened = re.search(r'data-message="(\d+)" open>', html).group(1)
    assert int(opened) == Message.objects.get(message_id="<c-me@example.test>").pk
    assert not Message.objects.filter(thread_id=rows[0].thread_id, seen=False).exists()
    assert web.get(f"/m/{rows[-1].pk}/conversation/").status_code == 200


def test_archiving_a_conversation_moves_all_of_it_out_of_the_inbox(
        web, mailbox, deliver, grouped):
    rows = thread(deliver, mailbox, 3, "d")
    other = thread(deliver, mailbox, 1, "e", hour=12, sent_reply=False)
    inbox = get_folder_by_role(mailbox, FolderRole.INBOX)
    web.post("/actions/", {"action": "archive", "ids": [rows[-1].pk], "folder": inbox.pk,
                           "conversations": "1"}, **HX)
    left = set(Message.objects.filter(folder=inbox).values_list("pk", flat=True))
    assert left == {other[0].pk}
    archive = get_folder_by_role(mailbox, FolderRole.ARCHIVE)
    assert Message.objects.filter(folder=archive).count() == 3
    assert Message.objects.filter(folder__role=FolderRole.SENT).count() == 1  # Sent stays
    response = web.post("/actions/", {"action": "unread", "ids": [other[0].pk],
                                      "folder": inbox.pk, "conversations": "1"}, **HX)
    assert not Message.objects.get(pk=other[0].pk).seen
    html = response.content.decode()
    assert html.count('class="row conversation unread"') == 1 and 'hx-swap-oob="true"' in html


def test_the_setting_switches_back_to_single_messages(web, mailbox, deliver, grouped):
    thread(deliver, mailbox, 2, "f", sent_reply=False)
    web.post("/settings/conversations/", {"conversation_list": "off"})
    inbox = get_folder_by_role(mailbox, FolderRole.INBOX)
    html = web.get(f"/f/{inbox.pk}/").content.decode()
    assert "row conversation" not in html and html.count('class="row ') == 2


def test_a_reply_arriving_moves_its_conversation_to_the_top_in_the_live_update(
        web, mailbox, deliver, grouped):
    rows = thread(deliver, mailbox, 1, "g", sent_reply=False)
    deliver(subject="Other")
    inbox = get_folder_by_role(mailbox, FolderRole.INBOX)
    page = web.get(f"/f/{inbox.pk}/")
    inbox.refresh_from_db()
    sig = page.context["live_sig"]
    reply = deliver(raw=make_message(subject="Re: Topic g", message_id="<g-9@x.test>",
                                     in_reply_to="<g-0@x.test>", references="<g-0@x.test>"))
    html = web.get("/live/", {"sig": sig, "folder": inbox.pk, "since": inbox.highestmodseq,
                              "uidnext": inbox.uidnext}, **HX).content.decode()
    assert f'data-id="{reply.pk}" data-count="2"' in html
    assert f'<li id="row-{inbox.pk}-{rows[0].uid}" hx-swap-oob="delete">' in html
