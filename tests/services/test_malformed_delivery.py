"""Every malformed message of the corpus is stored and read back byte for byte, on SQLite and
PostgreSQL alike (PostgreSQL refuses NUL in text and jsonb, so the cached fields must not carry
one)."""

from pathlib import Path

import pytest

from mailcore.blobstore import load_blob
from mailcore.models import Message
from mailcore.services import delivery
from tests.mime.test_malformed import nested_messages, nested_multiparts

CORPUS = sorted((Path(__file__).parent.parent / "data" / "malformed").glob("*.eml"))


def test_the_corpus_has_at_least_thirty_messages():
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_malformed_message_is_stored_unchanged(mailbox, path):
    raw = path.read_bytes()
    result = delivery.deliver_message(raw, ["demo@example.test"])
    message = Message.objects.get(pk=result.delivered[0].message_pk)
    assert load_blob(message.blob_id) == raw
    assert message.size == len(raw)
    assert isinstance(message.structure, dict) and isinstance(message.envelope, list)


@pytest.mark.parametrize("build", [nested_multiparts, nested_messages])
def test_a_thousand_nested_levels_are_stored(mailbox, build):
    raw = build(1000)
    result = delivery.deliver_message(raw, ["demo@example.test"])
    assert load_blob(Message.objects.get(pk=result.delivered[0].message_pk).blob_id) == raw
