"""The webmail's search (mailcore.services.search): Gmail-style parsing, and the full-text index
maintained at delivery and append (and through moves, copies and deletion)."""

from datetime import date

import pytest

from mailcore.models import SearchDocument
from mailcore.services.delivery import append_message, deliver_message
from mailcore.services.folders import expunge, move_messages
from mailcore.services.search.index import index_missing
from mailcore.services.search.messages import search_messages
from mailcore.services.search.query import parse_query

pytestmark = pytest.mark.django_db


def test_parse_query_reads_every_operator():
    q = parse_query('from:bob to:carol subject:"big news" has:attachment is:unread is:starred '
                    "before:2024-02-01 after:2024/01/01 larger:2M smaller:10k in:Archive "
                    "hello -spam")
    fields = [(t.field, t.words, t.negated) for t in q.terms]
    assert ("from_text", ["bob"], False) in fields
    assert ("to_text", ["carol"], False) in fields
    assert ("subject", ["big", "news"], False) in fields
    assert (None, ["hello"], False) in fields and (None, ["spam"], True) in fields
    assert q.has_attachment and q.unread and q.flagged
    assert q.before == date(2024, 2, 1) and q.after == date(2024, 1, 1)
    assert q.larger == 2 * 1024 * 1024 and q.smaller == 10 * 1024 and q.folder == "Archive"


def test_unknown_operators_and_bad_values_become_words():
    q = parse_query("foo:bar before:someday")
    assert [t.words for t in q.terms] == [["foo", "bar"], ["before", "someday"]]


def test_words_match_as_prefixes_without_case_or_accents(mailbox, message_bytes):
    deliver_message(message_bytes(subject="Résumé attached", body="see it"), [mailbox.address])
    for text in ("resume", "RÉSUM", "subject:resu"):
        assert search_messages(mailbox, parse_query(text)).count() == 1, text
    assert search_messages(mailbox, parse_query("subject:see")).count() == 0


def test_phrases_need_adjacent_words(mailbox, message_bytes):
    deliver_message(message_bytes(body="the quick brown fox"), [mailbox.address])
    assert search_messages(mailbox, parse_query('"quick brown"')).count() == 1
    assert search_messages(mailbox, parse_query('"brown quick"')).count() == 0


def test_negated_words_exclude(mailbox, message_bytes):
    deliver_message(message_bytes(subject="alpha beta"), [mailbox.address])
    deliver_message(message_bytes(subject="alpha gamma"), [mailbox.address])
    assert search_messages(mailbox, parse_query("alpha -beta")).count() == 1
    assert search_messages(mailbox, parse_query("-beta")).count() == 1


def test_attachment_names_and_html_bodies_are_indexed(mailbox, message_bytes):
    deliver_message(message_bytes(html="<p>hidden <b>treasure</b></p>",
                                  attachments=[("map-2024.pdf", b"%PDF", "application/pdf")]),
                    [mailbox.address])
    assert search_messages(mailbox, parse_query("treasure")).count() == 1
    assert search_messages(mailbox, parse_query("map 2024")).count() == 1


def test_the_index_follows_appends_moves_and_expunges(mailbox, inbox, message_bytes):
    archive = mailbox.folders.get(role="archive")
    message = append_message(inbox, message_bytes(subject="kiwi"))
    assert search_messages(mailbox, parse_query("kiwi"), inbox).count() == 1
    move_messages(inbox, [message.uid], archive)
    assert search_messages(mailbox, parse_query("kiwi"), inbox).count() == 0
    assert search_messages(mailbox, parse_query("kiwi in:archive")).count() == 1
    moved = archive.messages.get()
    expunge(archive, [moved.uid], only_deleted=False)
    assert not SearchDocument.objects.exists()
    assert search_messages(mailbox, parse_query("kiwi in:anywhere")).count() == 0


def test_one_stored_copy_is_one_document_but_each_mailbox_sees_only_its_own(
    make_mailbox, message_bytes
):
    one, two = make_mailbox("one@example.test"), make_mailbox("two@example.test")
    deliver_message(message_bytes(subject="shared news"), [one.address, two.address])
    deliver_message(message_bytes(subject="private news"), [one.address])
    assert SearchDocument.objects.count() == 2
    assert search_messages(two, parse_query("news")).count() == 1
    assert search_messages(one, parse_query("news")).count() == 2


def test_index_missing_indexes_mail_stored_before_the_index(mailbox, message_bytes):
    deliver_message(message_bytes(subject="legacy"), [mailbox.address])
    SearchDocument.objects.all().delete()
    assert search_messages(mailbox, parse_query("legacy")).count() == 0
    assert index_missing() == 1
    assert search_messages(mailbox, parse_query("legacy")).count() == 1


def test_flag_size_and_date_filters(mailbox, inbox, message_bytes):
    deliver_message(message_bytes(body="x" * 5000), [mailbox.address])
    deliver_message(message_bytes(), [mailbox.address])
    assert search_messages(mailbox, parse_query("larger:4k")).count() == 1
    assert search_messages(mailbox, parse_query("smaller:4k")).count() == 1
    assert search_messages(mailbox, parse_query("is:unread")).count() == 2
    assert search_messages(mailbox, parse_query("is:flagged")).count() == 0
    assert search_messages(mailbox, parse_query("before:2000-01-01")).count() == 0
    assert search_messages(mailbox, parse_query("after:2000-01-01")).count() == 2


def test_mail_stored_by_the_batched_intake_path_is_searchable(mailbox):
    from mailcore.services.delivery import deliver_to_inboxes
    from tests.factories import make_message

    deliver_to_inboxes([(make_message(subject="Zanzibar itinerary", body="ferry times"), [mailbox.pk])])
    results = search_messages(mailbox, parse_query("zanzibar ferry"))
    assert [m.subject for m in results] == ["Zanzibar itinerary"]


def test_no_combining_character_lies_beyond_the_scanned_range():
    import unicodedata

    from mailcore.services.search import text

    beyond = [cp for cp in range(text._LAST_COMBINING, 0x110000)
              if unicodedata.combining(chr(cp))]
    assert beyond == []
    assert text.normalize_words("Résumé NAÏVE Ελληνικά ὀδύσσεια") == [
        "resume", "naive", "ελληνικα", "οδυσσεια"]
