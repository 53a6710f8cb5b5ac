"""Composition state changes (webmail/composing.py) called directly, as the views call them:
send and take back, discard, and attachments over the limit."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from mailcore.models import Message, OutboundMessage
from webmail import composing
from webmail.models import ComposeState, Composition, WebmailSettings


@pytest.fixture
def composition(mailbox):
    prefs, _ = WebmailSettings.objects.get_or_create(mailbox=mailbox)
    started = composing.start(mailbox, prefs)
    composing.fill(started, {"to": "Far <far@remote.test>", "subject": "Plans",
                             "body": "line one\r\nline two"})
    return started


def drafts(mailbox):
    return list(Message.objects.filter(mailbox=mailbox, folder__role="drafts"))


def test_fill_keeps_the_text_with_plain_line_ends(composition):
    composition.refresh_from_db()
    assert composition.body == "line one\nline two" and composition.subject == "Plans"


def test_a_sent_composition_taken_back_is_written_again_with_its_draft(mailbox, composition):
    assert composing.save_to_drafts(composition, mailbox) is not None
    assert composing.save_to_drafts(composition, mailbox) is None  # unchanged: no new copy
    draft, problems = composing.to_draft(composition, strict=True, mailbox=mailbox)
    assert not problems
    composing.send(composition, mailbox, draft,
                   hold_until=timezone.now() + timedelta(seconds=30), later=False)
    composition.refresh_from_db()
    assert composition.state == ComposeState.SENDING and composition.outbound_id
    assert drafts(mailbox) == []  # the draft went with the send
    assert composing.take_back(composition, mailbox) is True
    composition.refresh_from_db()
    assert composition.state == ComposeState.EDITING and composition.outbound_id is None
    assert not OutboundMessage.objects.exists()
    assert [m.subject for m in drafts(mailbox)] == ["Plans"]
    assert composing.take_back(composition, mailbox) is False  # nothing left to take back


def test_discard_drops_the_composition_and_its_draft(mailbox, composition):
    composing.save_to_drafts(composition, mailbox)
    composing.discard(composition, mailbox)
    assert not Composition.objects.filter(pk=composition.pk).exists()
    assert drafts(mailbox) == []


def test_an_attachment_over_the_limit_is_refused_and_the_ones_before_it_stay(
    mailbox, composition, settings
):
    settings.CORREIO_MAX_MESSAGE_SIZE = 200 * 1024  # room for about 85 KB of attachments
    small = SimpleUploadedFile("a.txt", b"x" * 1000, content_type="text/plain")
    big = SimpleUploadedFile("b.bin", b"y" * 100_000)
    with pytest.raises(composing.AttachmentRefused, match="b.bin is too large"):
        composing.attach(composition, [small, big], max_uploads=5)
    assert [u.filename for u in composition.uploads.all()] == ["a.txt"]
    with pytest.raises(composing.AttachmentRefused, match="At most 1 attachments"):
        composing.attach(composition, [small], max_uploads=1)
    composing.detach(composition, composition.uploads.get().pk)
    assert not composition.uploads.exists()
