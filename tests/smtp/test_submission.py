"""The submission door (ports 587 and 465) end to end with real clients (smtplib, swaks, raw
sockets): AUTH only over TLS or from loopback, every reply code of the rules, the group commit
and the queue behind them, and the MX forwarding to remote alias destinations through the
queue. The MX door's own tests are the other modules of this folder."""

import asyncio
import base64
import contextlib
import smtplib
import ssl

import pytest
import trustme

from mailcore.exceptions import SenderNotOwned
from mailcore.models import Alias, Message, OutboundMessage, OutboundRecipient
from mailcore.protocols.common.config import ListenerConfig
from mailcore.protocols.common.services import close_connections
from mailcore.protocols.smtp.commit import submission_committer
from mailcore.protocols.smtp.server import start_servers
from mailcore.services import submission
from mailcore.services.outbound.queue import EnqueueResult
from mailcore.services.outbound.relay import deliver_outbound
from tests.conftest import PASSWORD
from tests.factories import make_message
from tests.listeners import run_listener
from tests.outbound.conftest import fresh_transport, remote_mx  # noqa: F401 (fixtures)
from tests.outbound.helpers import SENDER
from tests.outbound.sink import Behaviour
from tests.smtp.conftest import Wire, swaks

pytestmark = pytest.mark.django_db(transaction=True)
HOSTNAME = "mail.example.test"


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
def certificate(ca, tmp_path):
    cert = ca.issue_cert(HOSTNAME, "127.0.0.1", "localhost")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(key_path))
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    return str(cert_path), str(key_path)


@pytest.fixture
def client_context(ca):
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
def start_mail():
    """``start_mail(plaintext=...)`` runs the MX, 587 and 465 listeners on ports 0."""
    stack = contextlib.ExitStack()

    def start(certificate=None, plaintext=None):
        extra = {}
        if plaintext is not None:
            extra["submission_allow_plaintext"] = plaintext
        cert, key = certificate or (None, None)
        config = ListenerConfig(
            hostname=HOSTNAME, smtp_addr=("127.0.0.1", 0),
            submission_addr=("127.0.0.1", 0),
            submissions_addr=("127.0.0.1", 0) if certificate else None,
            tls_cert=cert, tls_key=key, extra=extra)
        listener = stack.enter_context(run_listener(lambda: start_servers(config)))
        ports = listener.ports
        return ports if certificate else [*ports, None]

    with stack:
        yield start


@pytest.fixture
def users(make_mailbox):
    return {"demo": make_mailbox("demo@example.test"),
            "alice": make_mailbox("alice@example.test")}


def queued(address: str) -> list[OutboundRecipient]:
    return list(OutboundRecipient.objects.filter(address=address))


def inbox_subjects(address: str) -> list[str]:
    return list(Message.objects.filter(mailbox__address=address, folder__role="inbox")
                .order_by("uid").values_list("subject", flat=True))


def test_a_user_submits_over_starttls_and_mail_is_queued_or_delivered(
    start_mail, users, certificate, client_context
):
    _, port, _ = start_mail(certificate, plaintext=lambda ip: False)
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo("laptop")
        assert client.has_extn("starttls") and not client.has_extn("auth")
        client.starttls(context=client_context)
        client.ehlo("laptop")
        assert client.esmtp_features["auth"].split() == ["LOGIN", "PLAIN"]
        client.login("demo@example.test", PASSWORD)
        refused = client.sendmail(
            "demo@example.test", ["friend@remote.test", "alice@example.test"],
            make_message(sender="Demo <demo@example.test>", subject="Hello both"))
    assert refused == {}
    [entry] = queued("friend@remote.test")
    assert entry.state == "queued" and entry.message.mail_from == "demo@example.test"
    assert entry.message.mailbox.address == "demo@example.test"
    stored = bytes(entry.message.blob.data)
    assert stored.startswith(b"Received: from laptop") and b"with ESMTPSA id" in stored
    assert b"Return-Path" not in stored
    assert inbox_subjects("alice@example.test") == ["Hello both"]
    assert not queued("alice@example.test")


def test_the_implicit_tls_port_takes_auth_plain_at_once(
    start_mail, users, certificate, client_context
):
    _, _, port = start_mail(certificate, plaintext=lambda ip: False)
    with smtplib.SMTP_SSL("127.0.0.1", port, context=client_context) as client:
        client.ehlo("laptop")
        assert "PLAIN" in client.esmtp_features["auth"]
        client.login("demo@example.test", PASSWORD)
        client.sendmail("demo@example.test", ["x@remote.test"],
                        make_message(sender="demo@example.test"))
    assert len(queued("x@remote.test")) == 1


def test_auth_before_tls_is_refused_away_from_loopback(start_mail, users, certificate):
    _, port, _ = start_mail(certificate, plaintext=lambda ip: False)
    wire = Wire(port)
    wire.reply()
    assert "AUTH" not in wire.cmd("EHLO laptop")
    plain = base64.b64encode(f"\0demo@example.test\0{PASSWORD}".encode()).decode()
    assert wire.cmd(f"AUTH PLAIN {plain}").startswith("538 5.7.11 ")


def test_loopback_may_authenticate_without_tls(start_mail, users):
    _, port, _ = start_mail()
    result = swaks(port, "--from", "demo@example.test", "--to", "x@remote.test",
                   "--auth", "LOGIN", "--auth-user", "demo@example.test",
                   "--auth-password", PASSWORD, "--header", "From: demo@example.test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "235 2.7.0" in result.stdout
    assert len(queued("x@remote.test")) == 1


def test_mail_before_auth_gets_530_5_7_0(start_mail, users):
    _, port, _ = start_mail()
    wire = Wire(port)
    wire.reply()
    wire.cmd("EHLO laptop")
    assert wire.cmd("MAIL FROM:<demo@example.test>").startswith("530 5.7.0 ")
    assert wire.cmd("RCPT TO:<x@remote.test>").startswith("530 5.7.0 ")


def test_bad_credentials_get_535_5_7_8_and_then_the_shared_throttle(
    start_mail, users, settings
):
    settings.CORREIO_AUTH_MAX_FAILURES = 3
    _, port, _ = start_mail()
    wire = Wire(port)
    wire.reply()
    wire.cmd("EHLO laptop")
    bad = base64.b64encode(b"\0demo@example.test\0wrong").decode()
    for _ in range(3):
        assert wire.cmd(f"AUTH PLAIN {bad}").startswith("535 5.7.8 ")
    good = base64.b64encode(f"\0demo@example.test\0{PASSWORD}".encode()).decode()
    assert wire.cmd(f"AUTH PLAIN {good}").startswith("454 4.7.0 ")
    # The throttle is the one every door shares.
    from mailcore.exceptions import AuthThrottled
    from mailcore.services import credentials

    with pytest.raises(AuthThrottled):
        credentials.authenticate("demo@example.test", PASSWORD, "127.0.0.1")


def test_auth_login_with_challenges_and_a_cancelled_exchange(start_mail, users):
    _, port, _ = start_mail()
    wire = Wire(port)
    wire.reply()
    wire.cmd("EHLO laptop")
    assert wire.cmd("AUTH LOGIN") == "334 VXNlcm5hbWU6"
    assert wire.cmd("*").startswith("501 5.7.0")
    assert wire.cmd("AUTH LOGIN") == "334 VXNlcm5hbWU6"
    assert wire.cmd(base64.b64encode(b"demo@example.test").decode()) == "334 UGFzc3dvcmQ6"
    assert wire.cmd(base64.b64encode(PASSWORD.encode()).decode()).startswith("235 2.7.0")
    assert wire.cmd("AUTH PLAIN AGEAYg==").startswith("503 5.5.1")
    assert wire.cmd("AUTH CRAM-MD5").startswith("503 5.5.1")


def test_unknown_mechanisms_and_garbage_get_their_errors(start_mail, users):
    _, port, _ = start_mail()
    wire = Wire(port)
    wire.reply()
    wire.cmd("EHLO laptop")
    assert wire.cmd("AUTH CRAM-MD5").startswith("504 5.5.4")
    assert wire.cmd("AUTH PLAIN !!!notbase64").startswith("501 5.5.2")
    assert wire.cmd("AUTH PLAIN " + base64.b64encode(b"no-nul").decode()).startswith("501 5.5.2")
    assert wire.cmd("AUTH").startswith("501 5.5.4")


def _login(port) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", port)
    client.ehlo("laptop")
    client.login("demo@example.test", PASSWORD)
    return client


@pytest.mark.parametrize("sender", ["alice@example.test", "demo@remote.test", "<>"])
def test_an_envelope_sender_not_the_users_own_gets_553_5_7_1(start_mail, users, sender):
    _, port, _ = start_mail()
    client = _login(port)
    code, message = client.mail("" if sender == "<>" else sender)
    assert (code, message[:5]) == (553, b"5.7.1")
    client.quit()


def test_an_alias_of_the_user_is_a_valid_sender(start_mail, users):
    Alias.objects.create(domain=users["demo"].domain, local_part="sales",
                         destinations="demo@example.test")
    _, port, _ = start_mail()
    with _login(port) as client:
        client.sendmail("sales@example.test", ["x@remote.test"],
                        make_message(sender="Sales <sales@example.test>"))
    assert OutboundMessage.objects.get().mail_from == "sales@example.test"


def test_a_from_header_not_the_users_own_gets_550_5_7_1_after_data(start_mail, users):
    _, port, _ = start_mail()
    with _login(port) as client:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("demo@example.test", ["x@remote.test"],
                            make_message(sender="The Boss <alice@example.test>"))
    assert refused.value.smtp_code == 550 and refused.value.smtp_error.startswith(b"5.7.1")
    assert not OutboundMessage.objects.exists()


@pytest.mark.parametrize("extra", [
    b"From: Boss <alice@example.test>\r\n",
    b"From: demo@example.test\r\n",
    b"Sender: alice@example.test\r\n",
    b"Sender: demo@example.test\r\nSender: demo@example.test\r\n",
    b"Sender: demo@example.test, sales@example.test\r\n",
])
def test_a_second_from_or_a_foreign_or_repeated_sender_gets_550_5_7_1(start_mail, users, extra):
    _, port, _ = start_mail()
    with _login(port) as client:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("demo@example.test", ["x@remote.test"],
                            extra + make_message(sender="Demo <demo@example.test>"))
    assert refused.value.smtp_code == 550
    assert b"exactly one From field and at most one Sender" in refused.value.smtp_error
    assert not OutboundMessage.objects.exists()


def test_one_sender_of_the_users_own_is_accepted(start_mail, users):
    _, port, _ = start_mail()
    with _login(port) as client:
        client.sendmail("demo@example.test", ["x@remote.test"],
                        b"Sender: demo@example.test\r\n"
                        + make_message(sender="Demo <demo@example.test>"))
    assert OutboundMessage.objects.count() == 1


def test_recipients_may_be_anywhere_but_unknown_local_ones_get_550(start_mail, users):
    _, port, _ = start_mail()
    with _login(port) as client:
        client.mail("demo@example.test")
        assert client.rcpt("anyone@far-away.test")[0] == 250
        assert client.rcpt("nobody@example.test")[0] == 550
        assert client.rcpt("bad address@x.test")[0] in (501, 553)


def test_the_mx_port_still_refuses_to_relay_even_after_auth_attempts(start_mail, users):
    mx, _, _ = start_mail()
    wire = Wire(mx)
    wire.reply()
    assert "AUTH" not in wire.cmd("EHLO laptop")
    wire.cmd("MAIL FROM:<demo@example.test>")
    assert wire.cmd("RCPT TO:<x@remote.test>").startswith("554 5.7.1 ")


def test_the_mx_forwards_a_remote_alias_destination_through_the_queue(start_mail, users):
    Alias.objects.create(domain=users["demo"].domain, local_part="team",
                         destinations="alice@example.test, partner@remote.test")
    mx, _, _ = start_mail()
    with smtplib.SMTP("127.0.0.1", mx) as client:
        client.sendmail("sender@elsewhere.test", ["team@example.test"],
                        make_message(subject="For the team"))
    assert inbox_subjects("alice@example.test") == ["For the team"]
    [entry] = queued("partner@remote.test")
    # SRS (issue 14): the forwarded copy's sender is ours and stands for the original one.
    from django.conf import settings

    from mailcore.trust import srs

    assert srs.reverse(entry.message.mail_from, settings.SECRET_KEY) == "sender@elsewhere.test"
    assert entry.state == "queued" and b"Received: from " in bytes(entry.message.blob.data)


def stored_inbox(address: str) -> list[bytes]:
    return [bytes(m.blob.data) for m in Message.objects.filter(
        mailbox__address=address, folder__role="inbox").select_related("blob").order_by("uid")]


def test_final_delivery_writes_the_reverse_path_and_a_stored_dsn_has_the_null_one(
    start_mail, users, remote_mx  # noqa: F811 (the fixture imported above)
):
    """RFC 5321 §4.4: the server making final delivery records the reverse-path in
    Return-Path, ``<>`` for a DSN (RFC 3464 §2, sent from the null sender) (issue 15)."""
    remote_mx("remote.test", behaviour=Behaviour(
        rcpt_replies={"nobody@remote.test": ["550 5.1.1 <nobody@remote.test>: no such user"]}))
    _, port, _ = start_mail()
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.login("demo@example.test", PASSWORD)
        client.sendmail("demo@example.test", ["nobody@remote.test", "alice@example.test"],
                        make_message(sender="demo@example.test", subject="Lost one"))
    [local_copy] = stored_inbox("alice@example.test")
    assert local_copy.startswith(b"Return-Path: <demo@example.test>\r\nReceived: from ")
    [entry] = queued("nobody@remote.test")
    report = deliver_outbound(entry.message_id)  # the worker's pass, as a plain call
    assert report.bounced == 1
    [dsn] = stored_inbox("demo@example.test")
    assert dsn.startswith(b"Return-Path: <>\r\n")


@pytest.mark.django_db(transaction=True)
def test_the_submission_listener_commits_messages_finishing_together_in_one_batch(mailbox):
    raw = make_message(sender=SENDER)

    async def main():
        committer = submission_committer()
        items = [submission.Submission(mailbox, SENDER, (f"r{n}@remote.test",), raw)
                 for n in range(8)]
        items.append(submission.Submission(mailbox, "else@example.test", ("x@remote.test",),
                                           raw))
        results = await asyncio.gather(*(committer.submit(i) for i in items),
                                        return_exceptions=True)
        return committer, results

    try:
        committer, results = asyncio.run(main())
    finally:
        close_connections()
    assert (committer.batches, committer.messages) == (1, 9)
    assert all(isinstance(r, EnqueueResult) for r in results[:8])
    assert isinstance(results[8], SenderNotOwned)
    assert OutboundMessage.objects.count() == 8
