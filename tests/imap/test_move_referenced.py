"""IMAP MOVE and EXPUNGE of a message the webmail is replying to or forwarding (issue 16 item
2: the database refused the store's raw DELETE and MOVE answered NO [UNAVAILABLE])."""

import pytest

from mailcore.models import Folder, Message
from mailcore.services import delivery
from tests.factories import make_message
from webmail.models import Composition

pytestmark = pytest.mark.django_db(transaction=True)


def _referenced(mailbox, subject: str) -> tuple[Message, Composition]:
    result = delivery.deliver_message(make_message(subject=subject), [mailbox.address])
    message = Message.objects.get(pk=result.delivered[0].message_pk)
    composition = Composition.objects.create(
        mailbox=mailbox, message_id=f"<{subject}@example.test>", replied=message,
        forwarded=message,
    )
    return message, composition


def test_uid_move_of_a_message_being_replied_to_succeeds_and_the_reply_follows(connect, mailbox):
    message, composition = _referenced(mailbox, "moved")
    client = connect()
    client.select("INBOX")
    typ, data = client.uid("MOVE", str(message.uid), "Archive")
    assert typ == "OK", data
    archive = Folder.objects.get(mailbox=mailbox, name="Archive")
    assert client.untagged_responses["OK"][-1] == (
        f"[COPYUID {archive.uidvalidity} {message.uid} 1] Moved".encode()
    )
    copy = archive.messages.get()
    composition.refresh_from_db()
    assert composition.replied_id == copy.pk == composition.forwarded_id
    assert client.uid("SEARCH", "ALL")[1] == [b""]


def test_expunge_of_a_message_being_replied_to_succeeds_and_releases_the_reply(connect, mailbox):
    message, composition = _referenced(mailbox, "expunged")
    client = connect()
    client.select("INBOX")
    assert client.uid("STORE", str(message.uid), "+FLAGS", r"(\Deleted)")[0] == "OK"
    typ, data = client.expunge()
    assert typ == "OK" and data == [b"1"]
    composition.refresh_from_db()
    assert composition.replied_id is None and composition.forwarded_id is None
    assert not Message.objects.filter(mailbox=mailbox).exists()
