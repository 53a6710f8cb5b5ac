"""The message list's rows (webmail/rows.py draws them without the template engine): every
mail-derived value is escaped, marks follow the flags, and rows read the same with the list
in single messages or in conversations."""

import re

import pytest

from mailcore.models import FolderRole
from mailcore.services.delivery import append_message
from mailcore.services.flags import set_flags
from mailcore.services.folders import create_folder, get_folder_by_role
from tests.factories import make_message
from tests.webmail.conftest import HX
from webmail.models import WebmailSettings

HOSTILE = '<script>alert("x")</script> & \'quoted\''


def _rows(html: str) -> list[str]:
    return re.findall(r'<li id="row-[^"]+".*?</li>', html, re.S)


@pytest.mark.parametrize("grouped", [False, True])
def test_hostile_subjects_senders_and_previews_are_escaped_in_every_row(
        web, mailbox, deliver, grouped):
    WebmailSettings.objects.create(mailbox=mailbox, conversation_list=grouped)
    deliver(raw=make_message(subject=HOSTILE, sender=f'"{HOSTILE}" <evil@remote.test>',
                             body=HOSTILE + "\n"))
    inbox = get_folder_by_role(mailbox, FolderRole.INBOX)
    for response in (web.get(f"/f/{inbox.pk}/"), web.get(f"/f/{inbox.pk}/", **HX)):
        html = response.content.decode()
        rows = _rows(html)
        assert len(rows) == 1
        assert "<script>" not in rows[0]
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;quoted&#x27;" \
            in rows[0]
        assert ('class="row conversation' in rows[0]) == grouped


def test_marks_follow_flags_and_the_current_message(web, mailbox, deliver):
    plain = deliver(raw=make_message(subject="Plain"))
    attached = deliver(raw=make_message(subject="Attached",
                                        attachments=[("a.pdf", b"%PDF-1.4", "application/pdf")]))
    inbox = get_folder_by_role(mailbox, FolderRole.INBOX)
    set_flags(inbox, [attached.uid], ["\\Seen", "\\Flagged"], "add")
    html = web.get(f"/f/{inbox.pk}/").content.decode()
    by_id = {int(re.search(r'data-id="(\d+)"', row).group(1)): row for row in _rows(html)}
    assert 'class="row unread"' in by_id[plain.pk]
    assert ">unread</span>" in by_id[plain.pk]
    assert 'class="row flagged"' in by_id[attached.pk]
    assert 'title="Has attachments"' in by_id[attached.pk]
    assert 'title="Flagged"' in by_id[attached.pk]
    assert 'title="Has attachments"' not in by_id[plain.pk]
    # Opening a message draws its row again (out of band), marked current.
    pane = web.get(f"/m/{plain.pk}/", **HX).content.decode()
    row = _rows(pane)[0]
    assert 'class="row unread current"' in row and 'hx-swap-oob="true"' in row
    assert f'href="/m/{plain.pk}/"' in row


def test_search_in_all_folders_names_each_row_s_folder_escaped(web, mailbox, deliver):
    folder = create_folder(mailbox, "Work & <i>play")
    append_message(folder, make_message(subject="quarterly numbers"))
    deliver(raw=make_message(subject="quarterly plans"))
    html = web.get("/search/", {"q": "quarterly", "scope": "all"}, **HX).content.decode()
    names = re.findall(r'<span class="in-folder">(.*?)</span>', html)
    assert sorted(names) == ["Inbox", "Work &amp; &lt;i&gt;play"]
