"""End of DATA: trace headers, durable storage before 250, one stored copy, and failures that
store nothing (RFC 5321 §4.1.1.4, §4.4; ARCHITECTURE.md "No loss")."""

import re
import smtplib
import threading
import time

import pytest
from django.db import connection

from mailcore.models import Blob, Folder, Mailbox, Message
from mailcore.protocols.smtp.commit import intake_committer
from tests.factories import make_message
from tests.smtp.conftest import HOSTNAME, Wire, body_of, stored, swaks

pytestmark = pytest.mark.django_db(transaction=True)


def send_raw(wire: Wire, data: bytes, sender="sender@remote.test", to="demo@example.test"):
    assert wire.cmd(f"MAIL FROM:<{sender}>") == "250 2.1.0 OK"
    assert wire.cmd(f"RCPT TO:<{to}>") == "250 2.1.5 OK"
    assert wire.cmd("DATA").startswith("354 ")
    wire.send(data)
    return wire.reply()


def test_the_message_is_stored_byte_for_byte_after_return_path_and_received(wire):
    message = make_message(subject="exact bytes")
    reply = send_raw(wire, message + b".\r\n")
    queue_id = re.match(r"250 2\.0\.0 OK: queued as ([0-9A-F]+)$", reply).group(1)
    (raw,) = stored("demo@example.test")
    assert body_of(raw) == message
    head = raw[: len(raw) - len(message)].decode()
    assert head.startswith("Return-Path: <sender@remote.test>\r\nReceived: from client.remote.test")
    assert "([127.0.0.1])" in head
    assert f"by {HOSTNAME} (Correio) with ESMTP id {queue_id}" in head
    assert "for <demo@example.test>;" in head
    assert all(len(line) <= 998 for line in head.split("\r\n"))


def test_a_message_to_several_recipients_does_not_name_them_in_received(port, local):
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.sendmail("s@remote.test", ["demo@example.test", "alice@example.test"],
                        make_message())
    (raw,) = stored("alice@example.test")
    assert b"for <" not in raw.split(b"\r\n\r\n")[0]


def test_dot_stuffed_lines_are_restored(wire):
    sent = b"Subject: dots\r\n\r\n..starts with a dot\r\n.\r\n"
    assert send_raw(wire, sent).startswith("250 ")
    (raw,) = stored("demo@example.test")
    assert body_of(raw) == b"Subject: dots\r\n\r\n.starts with a dot\r\n"


def test_an_empty_message_is_accepted(wire):
    assert send_raw(wire, b".\r\n").startswith("250 ")
    (raw,) = stored("demo@example.test")
    assert body_of(raw) == b""


def test_the_null_sender_of_bounces_is_accepted_and_recorded(wire):
    assert wire.cmd("MAIL FROM:<>") == "250 2.1.0 OK"
    assert wire.cmd("RCPT TO:<demo@example.test>") == "250 2.1.5 OK"
    wire.cmd("DATA")
    assert wire.cmd(b"Subject: bounce\r\n\r\nundeliverable\r\n.").startswith("250 ")
    (raw,) = stored("demo@example.test")
    assert raw.startswith(b"Return-Path: <>\r\n")


def test_8bit_mail_is_stored_unchanged(port, local):
    message = (
        "From: Zoë <zoe@remote.test>\r\nTo: demo@example.test\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\nCafé crème, ½ € 😀\r\n"
    ).encode()
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.sendmail("zoe@remote.test", ["demo@example.test"], message,
                        mail_options=["BODY=8BITMIME"])
    (raw,) = stored("demo@example.test")
    assert body_of(raw) == message
    row = Message.objects.get()
    assert row.subject == "café" and row.from_name == "Zoë"


def test_smtputf8_mail_with_utf8_addresses_and_headers_is_accepted(port, local):
    message = (
        "From: José <josé@exämple.test>\r\nTo: demo@example.test\r\nSubject: olá ünïcode\r\n"
        "Message-ID: <utf8@exämple.test>\r\n\r\nÇa marche.\r\n"
    ).encode()
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo("client.remote.test")
        assert client.has_extn("smtputf8")
        refused = client.sendmail("josé@exämple.test", ["demo@example.test"], message,
                                  mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    assert refused == {}
    (raw,) = stored("demo@example.test")
    assert body_of(raw) == message
    assert raw.startswith("Return-Path: <josé@exämple.test>\r\n".encode())
    assert b" with UTF8SMTP id " in raw
    assert Message.objects.get().subject == "olá ünïcode"


def test_a_non_ascii_sender_without_smtputf8_is_refused_with_553_5_6_7(wire):
    assert wire.cmd("MAIL FROM:<josé@exämple.test>".encode()).startswith("553 5.6.7")


def test_pipelined_transactions_in_one_write_are_all_answered_in_order(wire, local):
    transaction = (
        b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<demo@example.test>\r\n"
        b"RCPT TO:<nobody@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
    )
    wire.send(transaction)
    assert [wire.reply()[:9] for _ in range(5)] == [
        "250 2.1.0", "250 2.1.5", "550 5.1.1", "250 2.1.5", "354 End d",
    ]
    # The message, then a whole second transaction and QUIT, all in one write.
    wire.send(b"Subject: one\r\n\r\nfirst\r\n.\r\n" + transaction.replace(b"nobody", b"demo")
              + b"")
    assert wire.reply().startswith("250 2.0.0")
    assert [wire.reply()[:9] for _ in range(5)] == [
        "250 2.1.0", "250 2.1.5", "250 2.1.5", "250 2.1.5", "354 End d",
    ]
    wire.send(b"Subject: two\r\n\r\nsecond\r\n.\r\nQUIT\r\n")
    assert wire.reply().startswith("250 2.0.0")
    assert wire.reply() == "221 2.0.0 Bye"
    assert [body_of(raw).split(b"\r\n")[0] for raw in stored("demo@example.test")] == [
        b"Subject: one", b"Subject: two",
    ]
    assert len(stored("alice@example.test")) == 2


def test_swaks_delivers_with_pipelining(port, local):
    result = swaks(port, "--pipeline", "--to", "demo@example.test,alice@example.test",
                   "--from", "swaks@remote.test", "--header", "Subject: via swaks")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "<-  250 2.0.0 OK: queued as" in result.stdout
    assert b"Subject: via swaks" in stored("demo@example.test")[0]
    assert len(stored("alice@example.test")) == 1


def test_swaks_sees_unknown_recipients_refused(port, local):
    result = swaks(port, "--to", "nobody@example.test", "--from", "swaks@remote.test")
    assert result.returncode != 0
    assert "<** 550 5.1.1" in result.stdout


def test_a_message_with_more_than_50_received_headers_is_refused_as_a_loop(wire):
    hops = "".join(f"Received: from hop{n}.test by hop{n + 1}.test; now\r\n" for n in range(51))
    reply = send_raw(wire, f"{hops}Subject: loop\r\n\r\nround and round\r\n.\r\n".encode())
    assert reply.startswith("554 5.4.6 ")
    assert Message.objects.count() == 0


def test_a_message_with_50_received_headers_is_still_accepted(wire):
    hops = "".join(f"Received: from hop{n}.test by hop{n + 1}.test; now\r\n" for n in range(50))
    reply = send_raw(wire, f"{hops}Subject: far\r\n\r\nlong way\r\n.\r\n".encode())
    assert reply.startswith("250 ")


def test_a_client_that_disconnects_mid_data_stores_nothing(port, local):
    client = Wire(port)
    client.reply()
    client.cmd("EHLO client.remote.test")
    client.cmd("MAIL FROM:<a@remote.test>")
    client.cmd("RCPT TO:<demo@example.test>")
    assert client.cmd("DATA").startswith("354")
    client.send(b"Subject: cut\r\n\r\nhalf a message\r\n")
    client.close()
    time.sleep(0.5)
    assert Message.objects.count() == 0 and Blob.objects.count() == 0
    # The listener goes on serving.
    again = Wire(port)
    assert again.reply().startswith("220 ")
    again.cmd("EHLO client.remote.test")
    assert send_raw(again, b"Subject: whole\r\n\r\nfine\r\n.\r\n").startswith("250 ")
    assert len(stored("demo@example.test")) == 1


@pytest.fixture
def failing_storage():
    """Make the database refuse to store messages whose subject says FAIL-STORAGE, as a full
    disk or a broken table would: a real error raised by the database inside the transaction."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION correio_test_fail() RETURNS trigger AS $$ BEGIN "
                "IF NEW.subject LIKE '%FAIL-STORAGE%' THEN "
                "RAISE EXCEPTION 'simulated storage failure'; END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER correio_test_fail BEFORE INSERT ON mailcore_message "
                "FOR EACH ROW EXECUTE FUNCTION correio_test_fail()"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER correio_test_fail BEFORE INSERT ON mailcore_message "
                "WHEN NEW.subject LIKE '%FAIL-STORAGE%' "
                "BEGIN SELECT RAISE(ABORT, 'simulated storage failure'); END"
            )
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER correio_test_fail" + (
            " ON mailcore_message" if connection.vendor == "postgresql" else ""))
        if connection.vendor == "postgresql":
            cursor.execute("DROP FUNCTION correio_test_fail()")


def test_a_storage_failure_answers_451_and_stores_nothing(wire, local, failing_storage):
    inbox = Folder.objects.get(mailbox=local["demo"], role="inbox")
    reply = send_raw(wire, make_message(subject="FAIL-STORAGE now") + b".\r\n")
    assert reply == "451 4.3.0 Error: local error in processing, try again later"
    assert "simulated" not in reply
    assert Message.objects.count() == 0 and Blob.objects.count() == 0
    inbox.refresh_from_db()
    assert (inbox.uidnext, inbox.message_count) == (1, 0)
    assert Mailbox.objects.get(pk=local["demo"].pk).used_bytes == 0
    # The session goes on: the next message is stored.
    assert send_raw(wire, make_message(subject="fine") + b".\r\n").startswith("250 ")
    assert Message.objects.count() == 1


def test_one_failing_message_does_not_fail_others_committed_with_it(
    start_smtp, local, failing_storage
):
    committer = intake_committer(window=0.2)  # wide, so that all messages share one batch
    port = start_smtp(committer=committer).port
    results: dict[str, object] = {}

    def send(subject: str):
        try:
            with smtplib.SMTP("127.0.0.1", port) as client:
                client.sendmail("s@remote.test", ["demo@example.test"],
                                make_message(subject=subject))
            results[subject] = "ok"
        except smtplib.SMTPDataError as error:
            results[subject] = (error.smtp_code, error.smtp_error)

    threads = [threading.Thread(target=send, args=(f"good {n}",)) for n in range(4)]
    threads.append(threading.Thread(target=send, args=("FAIL-STORAGE bad",)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results.pop("FAIL-STORAGE bad") == (451, b"4.3.0 Error: local error in processing, "
                                                    b"try again later")
    assert results == {f"good {n}": "ok" for n in range(4)}
    assert sorted(Message.objects.values_list("subject", flat=True)) == [
        f"good {n}" for n in range(4)
    ]


def test_concurrent_messages_are_committed_in_shared_batches(start_smtp, local):
    committer = intake_committer(window=0.05)
    port = start_smtp(committer=committer).port
    errors = []

    def send(worker: int):
        try:
            with smtplib.SMTP("127.0.0.1", port) as client:
                for n in range(5):
                    client.sendmail("s@remote.test", ["demo@example.test", "alice@example.test"],
                                    make_message(subject=f"w{worker} n{n}"))
        except Exception as error:  # collected and reported by the test thread
            errors.append(error)

    threads = [threading.Thread(target=send, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert committer.messages == 40
    assert committer.batches < 40
    for address in ("demo@example.test", "alice@example.test"):
        inbox = Folder.objects.get(mailbox__address=address, role="inbox")
        uids = sorted(Message.objects.filter(folder=inbox).values_list("uid", flat=True))
        assert uids == list(range(1, 41))
        assert inbox.message_count == 40 and inbox.uidnext == 41
    assert Blob.objects.count() == 40


def test_a_message_that_would_overflow_the_quota_gets_452_at_end_of_data(wire, local):
    Mailbox.objects.filter(pk=local["demo"].pk).update(quota=2000, used_bytes=1500)
    reply = send_raw(wire, make_message(body="x" * 900 + "\n") + b".\r\n")
    assert reply.startswith("452 4.2.2 ")
    assert Message.objects.count() == 0
