"""Sieve at delivery, end to end through the MX listener: smtplib sends, the services show
where the message went; what goes out (vacation, redirect, bounces) is relayed through the
real outbound path to a recording SMTP server."""

import smtplib

import pytest
from django.conf import settings

from mailcore.blobstore import load_blob
from mailcore.models import FilterEvent, Message, OutboundMessage
from mailcore.services.outbound import relay
from mailcore.trust import srs

pytestmark = pytest.mark.django_db(transaction=True)

MAIL = (
    "From: Sender <sender@remote.test>\r\n"
    "To: demo@example.test\r\n"
    "Subject: {subject}\r\n"
    "Message-ID: <{mid}@remote.test>\r\n"
    "{extra}"
    "\r\n"
    "Hello.\r\n"
)


def send(port, subject="Hi", mid="m1", extra="", rcpts=("demo@example.test",),
         sender="sender@remote.test"):
    with smtplib.SMTP("127.0.0.1", port) as client:
        return client.sendmail(sender, list(rcpts),
                               MAIL.format(subject=subject, mid=mid, extra=extra).encode())


def folder_of(mailbox):
    return list(Message.objects.filter(mailbox=mailbox).values_list("folder__name", "seen",
                                                                     "flagged", "keywords"))


def relay_all():
    for entry in OutboundMessage.objects.filter(finished=False):
        relay.deliver_outbound(entry.pk)


@pytest.fixture
def demo(make_mailbox):
    return make_mailbox("demo@example.test")


def test_fileinto_creates_the_folder_and_sets_flags(start_smtp, demo, install_script):
    install_script(demo, 'require ["fileinto", "mailbox", "imap4flags", "variables"];\n'
                   'if header :matches "subject" "[*] *" {\n'
                   '  fileinto :create :flags ["\\\\Seen", "$list"] "Lists/${1}";\n}\n')
    port = start_smtp().port
    send(port, subject="[dev] release")
    send(port, subject="plain", mid="m2")
    assert sorted(folder_of(demo)) == [("INBOX", False, False, []),
                                       ("Lists/dev", True, False, ["$list"])]


def test_copies_with_their_own_flags_are_stored_in_one_write(start_smtp, demo, install_script):
    # keep and two fileinto :copy, each with its flags (RFC 5232 §3), share one stored blob.
    install_script(demo, 'require ["fileinto", "copy", "mailbox", "imap4flags"];\n'
                   'fileinto :copy :create :flags "\\\\Seen" "A";\n'
                   'addflag "$seen-by-rule";\n'
                   'fileinto :copy :create "B";\n'
                   'keep :flags "\\\\Flagged";\n')
    send(start_smtp().port)
    assert sorted(folder_of(demo)) == [("A", True, False, []),
                                       ("B", False, False, ["$seen-by-rule"]),
                                       ("INBOX", False, True, [])]
    assert len(set(Message.objects.filter(mailbox=demo).values_list("blob_id", flat=True))) == 1


def test_a_failing_script_keeps_the_message_and_records_the_error(start_smtp, demo,
                                                                   install_script):
    install_script(demo, 'require "fileinto"; fileinto "No such folder";')
    send(start_smtp().port)
    assert folder_of(demo) == [("INBOX", False, False, [])]
    event = FilterEvent.objects.get(mailbox=demo)
    assert event.kind == "error" and "No such folder" in event.detail


def test_reject_of_the_only_recipient_is_an_smtp_refusal(start_smtp, demo, install_script):
    install_script(demo, 'require "reject"; if header :contains "subject" "buy" '
                   '{ reject "I do not want this"; }')
    port = start_smtp().port
    with pytest.raises(smtplib.SMTPDataError) as info:
        send(port, subject="buy now")
    assert info.value.smtp_code == 550 and b"I do not want this" in info.value.smtp_error
    assert folder_of(demo) == []
    send(port, subject="hello")
    assert len(folder_of(demo)) == 1


def test_reject_by_one_of_two_recipients_bounces_with_a_dsn(start_smtp, demo, make_mailbox,
                                                           install_script, remote_mx):
    other = make_mailbox("other@example.test")
    install_script(demo, 'require "ereject"; ereject "go away";')
    sink = remote_mx("remote.test")
    send(start_smtp().port, rcpts=("demo@example.test", "other@example.test"))
    assert folder_of(demo) == [] and len(folder_of(other)) == 1
    relay_all()
    (dsn,) = sink.received
    assert dsn.mail_from in ("", "<>") and dsn.rcpt_tos == ["sender@remote.test"]
    assert b"go away" in dsn.data and b"Status: 5.7.1" in dsn.data


def test_discard_stores_nothing_but_leaves_a_trace(start_smtp, demo, install_script):
    install_script(demo, 'if address :domain "from" "remote.test" { discard; }')
    send(start_smtp().port)
    assert folder_of(demo) == []
    assert FilterEvent.objects.get(mailbox=demo).kind == "discard"


def test_redirect_goes_through_the_outbound_queue(start_smtp, demo, install_script,
                                                   remote_mx):
    install_script(demo, 'require "copy"; redirect :copy "fwd@remote.test";')
    sink = remote_mx("remote.test")
    send(start_smtp().port)
    assert len(folder_of(demo)) == 1
    relay_all()
    (copy,) = sink.received
    assert copy.rcpt_tos == ["fwd@remote.test"]
    assert b"Message-ID: <m1@remote.test>" in copy.data
    # SRS (mailcore/trust/srs.py): the envelope sender is rewritten into our domain, so the
    # next hop's SPF passes, and a bounce sent to it comes back to the original sender.
    assert copy.mail_from.lower().startswith("srs0=")
    assert copy.mail_from.lower().endswith("=remote.test=sender@example.test")
    assert srs.reverse(copy.mail_from, settings.SECRET_KEY) == "sender@remote.test"
    with smtplib.SMTP("127.0.0.1", start_smtp().port) as client:
        client.sendmail("", [copy.mail_from], b"Subject: bounce\r\n\r\nundeliverable\r\n")
    bounce = OutboundMessage.objects.get(mail_from="", subject="bounce")
    assert [r.address for r in bounce.recipients.all()] == ["sender@remote.test"]


VACATION = ('require ["vacation", "vacation-seconds"];\n'
            'vacation :seconds 3600 :subject "Away" "I am away until Monday.";\n')


def test_vacation_replies_once_per_sender_and_never_to_lists(start_smtp, demo, install_script,
                                                             remote_mx):
    install_script(demo, VACATION)
    sink = remote_mx("remote.test")
    port = start_smtp().port
    send(port, mid="a")
    send(port, mid="b")  # same sender within the period: no second reply
    send(port, mid="c", sender="list-bounces@remote.test", extra="List-Id: <x.remote.test>\r\n")
    send(port, mid="d", sender="robot@remote.test", extra="Auto-Submitted: auto-generated\r\n")
    send(port, mid="e", sender="bulk@remote.test", extra="Precedence: bulk\r\n")
    send(port, mid="f", sender="")
    assert len(folder_of(demo)) == 6
    relay_all()
    (reply,) = sink.received
    assert reply.mail_from in ("", "<>") and reply.rcpt_tos == ["sender@remote.test"]
    data = reply.data.decode()
    assert "Auto-Submitted: auto-replied" in data and "Subject: Away" in data
    assert "In-Reply-To: <a@remote.test>" in data and "References: <a@remote.test>" in data
    assert "I am away until Monday." in data
    event = FilterEvent.objects.get(mailbox=demo, kind="vacation")
    assert event.outbound.recipients.get().state == "delivered"


def test_vacation_does_not_answer_mail_not_addressed_to_the_user(start_smtp, demo,
                                                                 install_script):
    install_script(demo, VACATION)
    with smtplib.SMTP("127.0.0.1", start_smtp().port) as client:
        client.sendmail("sender@remote.test", ["demo@example.test"],
                        b"From: sender@remote.test\r\nTo: someone@else.test\r\n"
                        b"Subject: bcc\r\n\r\nhi\r\n")
    assert not OutboundMessage.objects.exists()


def test_editheader_changes_what_is_stored(start_smtp, demo, install_script):
    install_script(demo, 'require "editheader"; addheader "X-Filtered" "by sieve";')
    send(start_smtp().port)
    (message,) = Message.objects.filter(mailbox=demo)
    assert load_blob(message.blob_id).startswith(b"X-Filtered: by sieve\r\nReturn-Path:")
