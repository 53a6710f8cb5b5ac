"""Rows referring to messages (a reply or forward being written) never block the store: the raw
deletes of EXPUNGE and MOVE do what the keys' ``on_delete`` says (issue 16 item 2)."""

from pathlib import Path

import pytest

from mailcore.models import Message
from mailcore.services import delivery, folders
from mailcore.services.message_rows import _referring_keys, release_references
from webmail.models import Composition


@pytest.fixture
def original(mailbox, message_bytes):
    result = delivery.deliver_message(message_bytes(subject="Lunch?"), [mailbox.address])
    return Message.objects.get(pk=result.delivered[0].message_pk)


@pytest.fixture
def drafts(mailbox, original):
    reply = Composition.objects.create(mailbox=mailbox, message_id="<r@example.test>",
                                       replied=original)
    forward = Composition.objects.create(mailbox=mailbox, message_id="<f@example.test>",
                                         forwarded=original)
    return reply, forward


def test_every_key_to_a_message_has_an_on_delete_the_store_applies():
    fields = {(field.model.__name__, field.name) for field, _ in _referring_keys()}
    assert {("Composition", "replied"), ("Composition", "forwarded")} <= fields


@pytest.mark.django_db(transaction=True)
def test_a_message_being_replied_to_and_forwarded_can_be_moved_and_the_drafts_follow_it(
    mailbox, inbox, original, drafts
):
    archive = folders.get_folder(mailbox, "Archive")
    assert folders.move_messages(inbox, [original.uid], archive) == {original.uid: 1}
    moved = archive.messages.get()
    reply, forward = (Composition.objects.get(pk=c.pk) for c in drafts)
    assert reply.replied_id == moved.pk and forward.forwarded_id == moved.pk
    assert not Message.objects.filter(pk=original.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_expunging_a_message_being_replied_to_clears_the_references(
    mailbox, inbox, original, drafts
):
    Message.objects.filter(pk=original.pk).update(deleted=True)
    assert folders.expunge(inbox) == [original.uid]
    reply, forward = (Composition.objects.get(pk=c.pk) for c in drafts)
    assert reply.replied_id is None and forward.forwarded_id is None
    assert inbox.messages.count() == 0


@pytest.mark.django_db(transaction=True)
def test_expunge_without_flags_and_deleting_a_folder_release_references_too(
    mailbox, original, drafts
):
    receipts = folders.create_folder(mailbox, "Receipts")
    folders.copy_messages(original.folder, [original.uid], receipts)
    copy = receipts.messages.get()
    later = Composition.objects.create(mailbox=mailbox, message_id="<l@example.test>",
                                       replied=copy)
    folders.delete_folder(mailbox, "Receipts")  # the ORM's delete
    assert Composition.objects.get(pk=later.pk).replied_id is None
    assert folders.expunge(original.folder, [original.uid], only_deleted=False) == [original.uid]
    assert not Composition.objects.filter(replied__isnull=False).exists()
    assert not Composition.objects.filter(forwarded__isnull=False).exists()


def test_releasing_nothing_runs_no_statement(django_assert_num_queries, db):
    with django_assert_num_queries(0):
        release_references([])


def test_more_references_than_one_statement_holds_are_all_released(mailbox, original):
    pks = list(range(10_000_000, 10_001_200)) + [original.pk]
    Composition.objects.create(mailbox=mailbox, message_id="<x@example.test>", replied=original)
    release_references(pks, {original.pk: original.pk})  # followed: kept
    assert Composition.objects.get().replied_id == original.pk
    release_references(pks)
    assert Composition.objects.get().replied_id is None


def test_the_store_deletes_message_rows_by_hand_in_one_place_only():
    """Every raw ``DELETE`` must apply the ORM's ``on_delete`` itself (STYLE.md, rules learnt
    the hard way): the one in folders._expunge_rows does, through release_references. A new
    one must do the same and be listed here."""
    root = Path(__file__).resolve().parents[2]
    found = {
        str(path.relative_to(root))
        for base in ("mailcore", "webmail")
        for path in (root / base).rglob("*.py")
        if "migrations" not in path.parts and "DELETE FROM" in path.read_text()
    }
    assert found == {"mailcore/services/folders.py"}
    assert "release_references(" in (root / "mailcore/services/folders.py").read_text()
