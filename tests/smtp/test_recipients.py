"""Recipients are checked at RCPT time through the service layer (RFC 5321 §3.3): local
mailboxes and aliases are accepted, everything else refused with the right code."""

import smtplib

import pytest

from mailcore.models import Blob, Mailbox, Message
from tests.factories import make_message
from tests.smtp.conftest import make_alias, stored, swaks

pytestmark = pytest.mark.django_db(transaction=True)


def rcpt(wire, address: str) -> str:
    return wire.cmd(f"RCPT TO:<{address}>")


@pytest.fixture
def in_transaction(wire):
    assert wire.cmd("MAIL FROM:<sender@remote.test>") == "250 2.1.0 OK"
    return wire


def test_a_local_mailbox_is_accepted(in_transaction):
    assert rcpt(in_transaction, "demo@example.test") == "250 2.1.5 OK"


def test_addresses_match_without_regard_to_case_and_plus_tags(in_transaction):
    assert rcpt(in_transaction, "Demo@EXAMPLE.test") == "250 2.1.5 OK"
    assert rcpt(in_transaction, "demo+lists@example.test") == "250 2.1.5 OK"


def test_an_alias_of_a_local_domain_is_accepted(in_transaction):
    make_alias("team", "demo@example.test, alice@example.test")
    assert rcpt(in_transaction, "team@example.test") == "250 2.1.5 OK"


def test_an_unknown_user_of_a_local_domain_gets_550_5_1_1(in_transaction):
    assert rcpt(in_transaction, "nobody@example.test").startswith("550 5.1.1 ")


def test_any_other_domain_gets_554_5_7_1_relay_denied(in_transaction):
    assert rcpt(in_transaction, "someone@gmail.test").startswith("554 5.7.1 ")


def test_a_disabled_mailbox_gets_550_5_2_1(in_transaction, local):
    Mailbox.objects.filter(pk=local["alice"].pk).update(active=False)
    assert rcpt(in_transaction, "alice@example.test").startswith("550 5.2.1 ")


def test_a_mailbox_over_quota_gets_a_temporary_452_4_2_2(in_transaction, local):
    Mailbox.objects.filter(pk=local["alice"].pk).update(quota=1000, used_bytes=1000)
    assert rcpt(in_transaction, "alice@example.test").startswith("452 4.2.2 ")


def test_an_alias_to_a_remote_address_is_accepted_for_the_outbound_queue(in_transaction):
    # The forwarding itself is tested end to end in tests/outbound/test_submission.py.
    make_alias("fwd", "someone@elsewhere.test")
    assert rcpt(in_transaction, "fwd@example.test").startswith("250 ")


def test_aliases_that_loop_get_554_5_4_6(in_transaction):
    make_alias("ping", "pong@example.test")
    make_alias("pong", "ping@example.test")
    assert rcpt(in_transaction, "ping@example.test").startswith("554 5.4.6 ")
    chain = [f"hop{n}" for n in range(15)]
    for here, there in zip(chain, chain[1:], strict=False):
        make_alias(here, f"{there}@example.test")
    make_alias(chain[-1], "demo@example.test")
    assert rcpt(in_transaction, "hop0@example.test").startswith("554 5.4.6 ")


def test_bare_postmaster_is_accepted_and_delivered_to_the_domains_postmaster(
    in_transaction, make_mailbox
):
    make_mailbox("postmaster@example.test")
    assert rcpt(in_transaction, "Postmaster") == "250 2.1.5 OK"
    assert in_transaction.cmd("DATA").startswith("354")
    assert in_transaction.cmd(b"Subject: hi\r\n\r\nhello\r\n.").startswith("250 2.0.0")
    assert len(stored("postmaster@example.test")) == 1


def test_smtplib_and_swaks_reach_the_bare_postmaster(port, local, make_mailbox):
    """RFC 5321 §4.5.1: ``RCPT TO:<postmaster>`` without a domain must be accepted (issue 15)."""
    make_mailbox("postmaster@example.test")
    with smtplib.SMTP("127.0.0.1", port) as client:
        assert client.sendmail("s@remote.test", ["postmaster"], make_message()) == {}
    result = swaks(port, "--to", "postmaster", "--from", "s@remote.test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(stored("postmaster@example.test")) == 2


def test_refused_recipients_do_not_spoil_the_accepted_ones(port, local):
    with smtplib.SMTP("127.0.0.1", port) as client:
        refused = client.sendmail(
            "sender@remote.test",
            ["demo@example.test", "nobody@example.test", "x@elsewhere.test"],
            make_message(subject="mixed"),
        )
    assert set(refused) == {"nobody@example.test", "x@elsewhere.test"}
    assert refused["nobody@example.test"][0] == 550
    assert refused["x@elsewhere.test"][0] == 554
    assert len(stored("demo@example.test")) == 1


def test_several_recipients_and_aliases_share_one_stored_copy(port, local):
    make_alias("team", "demo@example.test, alice@example.test")
    message = make_message(subject="to the team")
    with smtplib.SMTP("127.0.0.1", port) as client:
        assert client.sendmail(
            "sender@remote.test", ["team@example.test", "demo@example.test"], message
        ) == {}
    # One blob, one message per mailbox: the alias and the direct address reach demo once.
    assert Blob.objects.count() == 1
    assert Message.objects.count() == 2
    demo, alice = stored("demo@example.test"), stored("alice@example.test")
    assert len(demo) == len(alice) == 1 and demo[0] == alice[0]
    assert demo[0].endswith(message)


def test_a_catch_all_alias_takes_unknown_users_of_its_domain(in_transaction):
    make_alias("", "alice@example.test")
    assert rcpt(in_transaction, "whoever@example.test") == "250 2.1.5 OK"


@pytest.fixture
def broken_database(local):
    """Make recipient lookups fail inside the database (the table of domains is gone, as after
    a botched migration), and put it back afterwards."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE mailcore_domain RENAME TO mailcore_domain_away")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE mailcore_domain_away RENAME TO mailcore_domain")


def test_an_unexpected_error_at_rcpt_answers_451_4_3_0_without_internals(
    in_transaction, broken_database
):
    reply = rcpt(in_transaction, "demo@example.test")
    assert reply == "451 4.3.0 Error: local error in processing, try again later"
