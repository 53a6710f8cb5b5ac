"""Archive, move and delete of a message that was replied to or forwarded (issue 16 item 2: the
webmail answered 500 and showed nothing)."""

import pytest

from mailcore.models import Message
from mailcore.services.folders import create_folder
from tests.webmail.conftest import HX
from webmail.models import Composition

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def answered(web, deliver):
    """A message with a reply and a forward started through the webmail's own pages."""
    message = deliver(subject="Quarterly figures")
    assert web.post(f"/m/{message.pk}/reply/").status_code == 302  # to the form
    assert web.post(f"/m/{message.pk}/forward/", {"as": "attachment"}).status_code == 302
    assert Composition.objects.filter(replied=message).count() == 1
    assert Composition.objects.filter(forwarded=message).count() == 1
    return message


def _links() -> set:
    rows = Composition.objects.values_list("replied_id", "forwarded_id")
    return {pk for row in rows for pk in row if pk is not None}


@pytest.mark.parametrize("headers", [HX, {}], ids=["htmx", "plain"])
def test_archive_of_a_replied_message_works_and_the_drafts_follow_it(
    web, mailbox, answered, headers
):
    response = web.post("/actions/", {"ids": [answered.pk], "action": "archive"}, **headers)
    assert response.status_code in (200, 302)
    archived = mailbox.folders.get(role="archive").messages.get()
    assert _links() == {archived.pk}


def test_move_then_delete_then_delete_for_good_of_a_forwarded_message(web, mailbox, answered):
    receipts = create_folder(mailbox, "Receipts")
    response = web.post("/actions/", {"ids": [answered.pk], "action": "move",
                                      "target": receipts.pk}, **HX)
    assert response.status_code == 200
    moved = receipts.messages.get()
    response = web.post("/actions/", {"ids": [moved.pk], "action": "delete",
                                      "folder": receipts.pk}, **HX)
    assert "Moved 1 message to Trash." in response.content.decode()
    trash = mailbox.folders.get(role="trash")
    in_trash = trash.messages.get()
    assert _links() == {in_trash.pk}
    response = web.post("/actions/", {"ids": [in_trash.pk], "action": "delete",
                                      "folder": trash.pk}, **HX)
    assert "Deleted 1 message for good." in response.content.decode()
    assert not Message.objects.filter(mailbox=mailbox).exists()
    assert _links() == set() and Composition.objects.count() == 2
