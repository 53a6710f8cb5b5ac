"""Junk / Not junk trains rspamd: a move into Junk (webmail button or IMAP) is learnt as spam,
out of Junk as ham, by a Celery task published after the move commits; real rspamd learns."""

import json
import urllib.request
import uuid

import pytest
from celery import current_app
from django.test import Client

from mailcore.models import Folder, Message
from mailcore.services import folders
from mailcore.services.delivery import deliver_message
from mailcore.services.training import training_kind
from tests.conftest import PASSWORD
from tests.factories import make_message


@pytest.mark.parametrize(("source", "target", "kind"), [
    ("inbox", "junk", True),
    ("archive", "junk", True),
    ("junk", "inbox", False),
    ("junk", "archive", False),
    ("junk", "trash", None),
    ("inbox", "archive", None),
    ("junk", "junk", None),
])
def test_which_moves_teach_what(source, target, kind):
    assert training_kind(Folder(role=source), Folder(role=target)) is kind


def learned(controller_url: str) -> int:
    with urllib.request.urlopen(controller_url + "/stat", timeout=10) as reply:
        return int(json.load(reply)["learned"])


@pytest.fixture
def eager():
    previous = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = True
    yield
    current_app.conf.task_always_eager = previous


@pytest.fixture
def redis_running():
    redis = pytest.importorskip("redis")
    try:
        redis.Redis(port=6379, socket_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("rspamd learns into Redis, which is not running")


def unique_message(to: str) -> bytes:
    words = " ".join(f"w{uuid.uuid4().hex[:8]}" for _ in range(40))
    return make_message(to=to, subject="offer", body=f"Special offer {words}\r\n")


@pytest.mark.django_db(transaction=True)
def test_the_junk_button_teaches_spam_and_not_junk_teaches_ham(
        spam_engine, settings, eager, redis_running, mailbox):
    before = learned(spam_engine.controller_url)
    row = Message.objects.get(
        pk=deliver_message(unique_message(mailbox.address), [mailbox.address])
        .delivered[0].message_pk)
    client = Client()
    assert client.post("/login/", {"address": mailbox.address, "password": PASSWORD}
                       ).status_code == 302
    client.post("/actions/", {"ids": [row.pk], "action": "junk"})
    assert learned(spam_engine.controller_url) == before + 1
    moved = Message.objects.get(mailbox=mailbox, folder__role="junk")
    client.post("/actions/", {"ids": [moved.pk], "action": "notjunk"})
    assert learned(spam_engine.controller_url) == before + 2


@pytest.mark.django_db(transaction=True)
def test_an_imap_style_move_teaches_and_without_a_controller_nothing_is_sent(
        spam_engine, settings, eager, redis_running, mailbox):
    inbox = mailbox.folders.get(role="inbox")
    junk = mailbox.folders.get(role="junk")
    deliver_message(unique_message(mailbox.address), [mailbox.address])
    deliver_message(unique_message(mailbox.address), [mailbox.address])
    before = learned(spam_engine.controller_url)
    settings.CORREIO_RSPAMD_CONTROLLER_URL = ""
    folders.move_messages(inbox, [1], junk)
    assert learned(spam_engine.controller_url) == before
    settings.CORREIO_RSPAMD_CONTROLLER_URL = spam_engine.controller_url
    folders.copy_messages(inbox, [2], junk)
    assert learned(spam_engine.controller_url) == before + 1


@pytest.mark.django_db(transaction=True)
def test_expunging_a_message_deletes_its_verdict_with_its_bytes(mailbox):
    from mailcore.models import Blob, InboundVerdict
    from mailcore.services.quarantine import VerdictRecord, deliver_screened

    raw = make_message(to=mailbox.address)
    deliver_screened(raw, [mailbox.pk], [mailbox.pk],
                     VerdictRecord("fail", True, False, reasons=("test",)))
    junk = mailbox.folders.get(role="junk")
    assert InboundVerdict.objects.get().reasons == ["test"]
    folders.expunge(junk, only_deleted=False)
    assert not InboundVerdict.objects.exists()
    assert not Blob.objects.exists()
