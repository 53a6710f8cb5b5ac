"""Issue 12 in the webmail: the live poll never loads a whole folder (``?since=0`` on a big
folder makes the page reload instead), and answers "reload" once the tombstones it would need
were purged."""

import pytest

from mailcore.models import Message
from mailcore.services import delivery, folders, tombstones
from tests.webmail.conftest import HX
from webmail.views import live

pytestmark = pytest.mark.django_db


def fill(mailbox, count: int, message_bytes) -> None:
    delivery.deliver_to_inboxes([(message_bytes(subject=f"m{i}"), [mailbox.pk])
                                 for i in range(count)])


def test_since_zero_on_a_big_folder_loads_a_bounded_number_of_rows_and_asks_for_a_reload(
    web, inbox, mailbox, message_bytes, monkeypatch, django_assert_max_num_queries
):
    monkeypatch.setattr(live, "MAX_LIVE_ROWS", 20)
    fill(mailbox, 60, message_bytes)
    loaded = []
    original = Message.from_db.__func__

    def counting(cls, db, names, values):
        loaded.append(1)
        return original(cls, db, names, values)

    monkeypatch.setattr(Message, "from_db", classmethod(counting))
    response = web.get(f"/live/?sig=x&folder={inbox.pk}&since=0&uidnext=1", **HX)
    assert response.status_code == 200
    assert response["HX-Refresh"] == "true"
    assert len(loaded) <= 21


def test_since_zero_on_a_small_folder_still_brings_its_rows(web, inbox, mailbox, message_bytes):
    fill(mailbox, 3, message_bytes)
    html = web.get(f"/live/?sig=x&folder={inbox.pk}&since=0&uidnext=1", **HX).content.decode()
    assert "HX-Refresh" not in html and html.count('id="row-') == 3


def test_the_purge_keeps_the_newest_tombstones_per_folder_and_records_its_floor(
    inbox, mailbox, message_bytes
):
    from mailcore.models import ExpungedMessage, Folder

    fill(mailbox, 12, message_bytes)
    uids = list(Message.objects.filter(folder=inbox).order_by("uid").values_list("uid", flat=True))
    for uid in uids[:10]:  # one expunge per mod-sequence
        folders.expunge(inbox, [uid], only_deleted=False)
    assert ExpungedMessage.objects.filter(folder=inbox).count() == 10
    assert tombstones.purge_expunged(keep=4) == 6
    kept = sorted(ExpungedMessage.objects.filter(folder=inbox).values_list("uid", flat=True))
    assert kept == uids[6:10]
    inbox = Folder.objects.get(pk=inbox.pk)
    floor = inbox.expunged_purged_modseq
    assert floor > 0
    assert tombstones.purge_expunged(keep=4) == 0  # idempotent
    # Changes since before the floor: incomplete for the webmail...
    assert not folders.changes_since(inbox, floor - 1, limit=100).complete
    assert folders.changes_since(inbox, floor, limit=100).complete


def test_the_daily_beat_task_purges_with_the_setting(inbox, mailbox, message_bytes, settings):
    from django.conf import settings as conf

    from mailcore.models import ExpungedMessage
    from mailcore.tasks import purge_expunged

    assert conf.CELERY_BEAT_SCHEDULE["expunged-cleanup"]["task"] == "mailcore.tasks.purge_expunged"
    fill(mailbox, 5, message_bytes)
    for uid in Message.objects.filter(folder=inbox).values_list("uid", flat=True):
        folders.expunge(inbox, [uid], only_deleted=False)
    settings.CORREIO_EXPUNGED_KEEP = 2
    assert purge_expunged() == 3
    assert ExpungedMessage.objects.filter(folder=inbox).count() == 2
