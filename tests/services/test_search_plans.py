"""The two ways search answers a page of newest matches (mailcore.services.search): from the
few matching documents, or by walking the mailbox newest first and testing each message. Both
must give the same messages in the same order for every operator; the choice between them
follows how many documents match."""

import pytest
from django.db import connection

from mailcore.models import SearchDocument
from mailcore.services.delivery import append_message, deliver_message
from mailcore.services.folders import copy_messages
from mailcore.services.search import plans
from mailcore.services.search.messages import search_messages
from mailcore.services.search.query import parse_query
from webmail.views.common import encode_cursor, page_of

pytestmark = pytest.mark.django_db

QUERIES = [
    "budget", "BUDG", "subject:budget", "budget -lunch", "-budget", "-budget -fox",
    '"brown fox"', '"fox brown"', "budget in:archive", "budget in:trash", "budget in:anywhere",
    "from:bob", "from:bob budget", "budget is:unread", "budget is:flagged", "has:attachment",
    "budget has:attachment", "zzz", "secret", "legacy", "shared",
]


def force(monkeypatch, plan: str) -> None:
    if plan == "walk":
        monkeypatch.setattr(plans, "_few_matches", lambda terms, scope, mailbox: None)
    else:
        monkeypatch.setattr(plans, "FEW_DOCUMENTS", 10**9)
        monkeypatch.setattr(plans, "SAMPLE_HITS", 10**9)


@pytest.fixture
def corpus(make_mailbox, message_bytes):
    """A mailbox with mail in the inbox, archive and trash, a copy in two folders, a message
    stored before the index, and a message shared with another mailbox (which also has mail of
    its own)."""
    demo, other = make_mailbox("demo@example.test"), make_mailbox("other@example.test")
    inbox, archive, trash = (demo.folders.get(role=r) for r in ("inbox", "archive", "trash"))
    add = lambda folder, **kw: append_message(folder, message_bytes(**kw))  # noqa: E731
    first = add(inbox, subject="Budget review", sender="Bob <bob@corp.test>",
                body="quarterly numbers")
    add(inbox, subject="Lunch plans", body="budget lunch friday")
    add(archive, subject="Budget archive", body="old budget")
    add(trash, subject="Budget trash", body="thrown away budget")
    add(inbox, subject="Fables", body="the quick brown fox")
    add(inbox, subject="Report", body="budget attached",
        attachments=[("budget.pdf", b"%PDF", "application/pdf")])
    copy_messages(inbox, [first.uid], archive)
    legacy = add(inbox, subject="Legacy budget")
    SearchDocument.objects.filter(blob_id=legacy.blob_id).delete()
    deliver_message(message_bytes(subject="Shared budget"), [demo.address, other.address])
    deliver_message(message_bytes(subject="Secret budget"), [other.address])
    return demo, inbox


def results(mailbox, text, folder=None) -> list[int]:
    return list(search_messages(mailbox, parse_query(text), folder).values_list("pk", flat=True))


@pytest.mark.parametrize("text", QUERIES)
def test_both_plans_give_the_same_messages_newest_first(corpus, monkeypatch, text):
    mailbox, inbox = corpus
    answers = {}
    for plan in ("few", "walk"):
        with monkeypatch.context() as patch:
            force(patch, plan)
            answers[plan] = (results(mailbox, text), results(mailbox, text, inbox))
    assert answers["few"] == answers["walk"], text


def test_the_answers_are_right_whichever_plan(corpus, monkeypatch):
    mailbox, inbox = corpus
    for plan in ("few", "walk"):
        with monkeypatch.context() as patch:
            force(patch, plan)

            def subjects(text, folder=None):
                return [m.subject for m in search_messages(mailbox, parse_query(text), folder)]

            # The copy in the archive keeps the original's internal date (RFC 3501 §6.4.7).
            assert subjects("budget") == ["Shared budget", "Report", "Budget archive",
                                          "Lunch plans", "Budget review", "Budget review"]
            assert subjects("budget", inbox) == ["Shared budget", "Report", "Lunch plans",
                                                 "Budget review"]
            assert subjects("budget -lunch in:trash") == ["Budget trash"]
            assert subjects('"brown fox"') == ["Fables"]
            assert subjects('"fox brown"') == []
            assert subjects("-budget") == ["Legacy budget", "Fables"]
            assert subjects("secret") == []
            assert subjects("budget has:attachment") == ["Report"]


def test_pages_follow_each_other_with_either_plan(corpus, monkeypatch, settings):
    mailbox, _ = corpus
    settings.CORREIO_WEBMAIL_PAGE_SIZE = 2
    for plan in ("few", "walk"):
        with monkeypatch.context() as patch:
            force(patch, plan)
            query = parse_query("budget")
            seen, cursor = [], None
            while True:
                page = page_of(search_messages(mailbox, query), cursor)
                seen += [m.pk for m in page.messages]
                if page.next_cursor is None:
                    break
                assert page.next_cursor == encode_cursor(page.messages[-1])
                cursor = page.next_cursor
            assert seen == results(mailbox, "budget"), plan


def walks(queryset) -> bool:
    sql = str(queryset.query)
    return ("ts_match_vq" if connection.vendor == "postgresql" else "MATCH") in sql


def test_a_word_in_few_documents_is_answered_from_them_and_a_common_one_by_walking(
    mailbox, inbox, message_bytes, monkeypatch
):
    for i in range(6):
        append_message(inbox, message_bytes(subject=f"common {i}", body="everywhere"))
    append_message(inbox, message_bytes(subject="rare one", body="everywhere"))
    # SQLite counts the matching documents; PostgreSQL tests the newest messages in scope.
    monkeypatch.setattr(plans, "FEW_DOCUMENTS", 3)
    monkeypatch.setattr(plans, "SAMPLE_ROWS", 4)
    monkeypatch.setattr(plans, "SAMPLE_HITS", 2)
    common = search_messages(mailbox, parse_query("everywhere"))
    rare = search_messages(mailbox, parse_query("rare"))
    assert walks(common) and not walks(rare)
    assert [m.subject for m in rare] == ["rare one"]
    assert len(common) == 7 and common[0].subject == "rare one"
