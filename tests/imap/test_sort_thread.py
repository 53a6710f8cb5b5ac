"""SORT (RFC 5256, SORT=DISPLAY RFC 5957, ESORT RFC 5267), THREAD (RFC 5256) and ESEARCH
(RFC 4731) against a real listener with imaplib; the base subject rules; the sort keys of mail
stored before they existed, filled in by the migration's backfill."""

import imaplib
import importlib
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection

from mailcore.mime.sortkeys import base_subject
from mailcore.models import Message
from mailcore.services import delivery
from tests.factories import make_message

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("subject, base, reply", [
    ("Hello", "Hello", False),
    ("Re: Hello", "Hello", True),
    ("RE: re:  Fwd: Hello  (fwd)", "Hello", True),
    ("[list] Re: [other] Hello", "Hello", True),
    ("[fwd: Re: Hello]", "Hello", True),
    ("[only a blob]", "[only a blob]", False),
    ("Hello (fwd) (FWD)", "Hello", True),
    ("  spaced\t out  ", "spaced out", False),
    ("", "", False),
])
def test_base_subject_follows_rfc_5256(subject, base, reply):
    assert base_subject(subject) == (base, reply)


def _deliver(mailbox, **fields):
    return delivery.deliver_to_mailboxes(make_message(**fields), [mailbox.pk])[0].uid


def test_sort_by_subject_date_and_display_name(connect, mailbox):
    _deliver(mailbox, subject="Re: banana", sender="Zed <zed@x.test>",
             date="Mon, 02 Mar 2026 10:00:00 +0000")
    _deliver(mailbox, subject="apple", sender="bob@x.test", date="Mon, 02 Mar 2026 09:00:00 +0000")
    _deliver(mailbox, subject="[list] Cherry", sender="=?utf-8?q?=C3=81lvaro?= <a@x.test>",
             date="Mon, 02 Mar 2026 11:00:00 +0100")
    client = connect()
    client.select("INBOX")
    assert client.sort("(SUBJECT)", "UTF-8", "ALL")[1] == [b"2 1 3"]
    assert client.sort("(REVERSE SUBJECT)", "UTF-8", "ALL")[1] == [b"3 1 2"]
    # 11:00 +0100 is 10:00 UTC: tied with message 1, which comes first by number.
    assert client.sort("(DATE)", "UTF-8", "ALL")[1] == [b"2 1 3"]
    assert client.sort("(DISPLAYFROM)", "UTF-8", "ALL")[1] == [b"3 2 1"]
    assert client.sort("(FROM)", "UTF-8", "NOT SUBJECT apple")[1] == [b"3 1"]
    typ, data = client.uid("SORT", "(SIZE)", "UTF-8", "ALL")
    assert typ == "OK" and sorted(data[0].split()) == [b"1", b"2", b"3"]
    with pytest.raises(imaplib.IMAP4.error, match="unknown sort key"):
        client.sort("(NOSUCHKEY)", "UTF-8", "ALL")
    typ, data = client.sort("(DATE)", "KOI8-R", "ALL")
    assert typ == "NO" and data[0].startswith(b"[BADCHARSET")


def test_esort_and_esearch_return_options(connect, mailbox):
    for subject in ("c", "a", "b"):
        _deliver(mailbox, subject=subject)
    client = connect()
    client.select("INBOX")
    tag = client._command("SORT", "RETURN", "(MIN MAX COUNT ALL)", "(SUBJECT)", "UTF-8", "ALL")
    typ, data = client._command_complete("SORT", tag)
    assert typ == "OK"
    (line,) = client.untagged_responses.pop("ESEARCH")
    assert line == f'(TAG "{tag.decode()}") MIN 2 MAX 1 COUNT 3 ALL 2:3,1'.encode()
    tag = client._command("UID", "SEARCH", "RETURN", "(MIN COUNT)", "SUBJECT", "b")
    typ, data = client._command_complete("SEARCH", tag)
    (line,) = client.untagged_responses.pop("ESEARCH")
    assert line == f'(TAG "{tag.decode()}") UID MIN 3 COUNT 1'.encode()
    tag = client._command("SEARCH", "RETURN", "()", "1000")
    assert client._command_complete("SEARCH", tag)[0] == "OK"
    assert client.untagged_responses.pop("ESEARCH") == [f'(TAG "{tag.decode()}")'.encode()]


def test_thread_references_and_orderedsubject(connect, mailbox):
    _deliver(mailbox, subject="Plan", message_id="<a@x>", date="Mon, 02 Mar 2026 09:00:00 +0000")
    _deliver(mailbox, subject="Re: Plan", message_id="<b@x>", references="<a@x>",
             date="Mon, 02 Mar 2026 10:00:00 +0000")
    _deliver(mailbox, subject="Other", message_id="<c@x>", date="Mon, 02 Mar 2026 08:00:00 +0000")
    _deliver(mailbox, subject="Re: Plan", message_id="<d@x>", references="<a@x> <b@x>",
             date="Mon, 02 Mar 2026 11:00:00 +0000")
    # A reply to a message we do not have: joined to the thread by its subject.
    _deliver(mailbox, subject="Re: Plan", message_id="<e@x>", references="<missing@x>",
             date="Mon, 02 Mar 2026 12:00:00 +0000")
    client = connect()
    client.select("INBOX")
    assert client.thread("REFERENCES", "UTF-8", "ALL")[1] == [b"(3)(1 (2 4)(5))"]
    assert client.thread("ORDEREDSUBJECT", "UTF-8", "ALL")[1] == [b"(3)(1 (2)(4)(5))"]
    assert client.uid("THREAD", "REFERENCES", "UTF-8", "SUBJECT", "Other")[1] == [b"(3)"]


def test_a_thousands_deep_reply_chain_threads_without_recursion(connect, mailbox):
    items = []
    for i in range(3000):
        refs = f"<m{i - 1}@x>" if i else None
        items.append((make_message(subject="chain", message_id=f"<m{i}@x>", references=refs,
                                   in_reply_to=refs), [mailbox.pk]))
    delivery.deliver_to_inboxes(items)
    client = connect()
    client.select("INBOX")
    typ, data = client.thread("REFERENCES", "UTF-8", "ALL")
    assert typ == "OK"
    assert data[0] == b"(" + b" ".join(str(n).encode() for n in range(1, 3001)) + b")"


def test_backfill_fills_the_sort_keys_of_stored_mail(mailbox):
    _deliver(mailbox, subject="Re: [x] Stored", sender="Old Name <old@x.test>",
             to="group: one@x.test;")
    Message.objects.update(sort_subject="", sort_from="", display_from="", sort_to="")
    migration = importlib.import_module("mailcore.migrations.0013_imap_sort_keys")
    migration.backfill_sort_keys(apps, SimpleNamespace(connection=connection))
    row = Message.objects.get()
    assert (row.sort_subject, row.subject_is_reply) == ("STORED", True)
    assert (row.sort_from, row.display_from, row.sort_to) == ("OLD", "old name", "GROUP")
