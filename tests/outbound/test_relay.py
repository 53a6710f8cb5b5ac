"""The SMTP relay transport against real servers on loopback: clean bytes on the wire, 8BITMIME
and SMTPUTF8, STARTTLS, DKIM, smarthost AUTH, and MX routing through a real DNS server."""

import email
import email.policy
import re
import ssl

import dkim
import pytest
import trustme
from aiosmtpd.smtp import AuthResult

from mailcore.models import OutboundRecipient
from mailcore.services.dkim import generate_dkim_key
from mailcore.services.outbound.queue import enqueue_outbound
from mailcore.services.outbound.relay import deliver_outbound
from mailcore.transports import reset_transport
from tests.factories import make_message
from tests.outbound.sink import (
    Behaviour,
    DnsServer,
    RawRecorder,
    RecordingHandler,
    serve_in_thread,
    start_raw,
    start_sink,
)

SENDER = "demo@example.test"


def only_recipient(outbound_id) -> OutboundRecipient:
    return OutboundRecipient.objects.get(message_id=outbound_id)


def test_what_goes_out_is_clean_smtp_whatever_the_stored_message_holds(mailbox, settings):
    stored = (
        b"From: demo@example.test\nTo: x@remote.test\rSubject: messy\r\n"
        b"X-Long: " + b"word " * 600 + b"\r\n"
        b"\n"
        b".leading dot\n"
        b".\n"
        b"bare\rcarriage return\n"
        + b"y" * 2500 + b"\n"
        b"last line without line end"
    )
    recorder = RawRecorder()
    with serve_in_thread(lambda: start_raw(recorder)) as raw_mx:
        settings.CORREIO_MX_OVERRIDES = {"remote.test": [("127.0.0.1", raw_mx.port)]}
        reset_transport()
        result = enqueue_outbound(stored, SENDER, ["x@remote.test"])
        deliver_outbound(result.outbound_id)
    assert only_recipient(result.outbound_id).state == "delivered"
    [payload] = recorder.payloads
    assert payload.endswith(b"\r\n.\r\n")
    assert re.search(rb"\r(?!\n)|(?<!\r)\n", payload) is None  # no bare CR or LF
    lines = payload.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    assert b"..leading dot" in lines and b".." in lines  # dots stuffed (RFC 5321 §4.5.2)
    assert b"bare" in lines and b"carriage return" in lines
    assert lines[-3] == b"last line without line end"
    # The folded header is still one header to a parser.
    parsed = email.message_from_bytes(payload[:-3].replace(b"\r\n..", b"\r\n."),
                                      policy=email.policy.compat32)
    assert parsed["X-Long"].split() == ["word"] * 600


def test_an_8bit_body_goes_as_8bitmime_where_offered(mailbox, remote_mx):
    far = remote_mx("remote.test")
    raw = make_message(sender=SENDER, body="Olá, não é só ASCII.\n").replace(
        b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: 8bit")
    raw = make_8bit(raw)
    result = enqueue_outbound(raw, SENDER, ["x@remote.test"])
    deliver_outbound(result.outbound_id)
    [got] = far.received
    assert "BODY=8BITMIME" in got.mail_options
    assert "não é só".encode() in got.data


def test_an_8bit_body_is_downgraded_for_a_server_without_8bitmime(mailbox, remote_mx):
    far = remote_mx("remote.test", behaviour=Behaviour(drop_extensions=("8BITMIME",)))
    raw = make_8bit(make_message(sender=SENDER, body="Olá, não é só ASCII.\n"))
    result = enqueue_outbound(raw, SENDER, ["x@remote.test"])
    deliver_outbound(result.outbound_id)
    [got] = far.received
    assert "BODY=8BITMIME" not in got.mail_options
    assert all(byte < 0x80 for byte in got.data)
    parsed = email.message_from_bytes(got.data, policy=email.policy.default)
    assert parsed.get_content().replace("\r\n", "\n") == "Olá, não é só ASCII.\n"


def make_8bit(raw: bytes) -> bytes:
    """The same message with its text body as raw UTF-8 (Content-Transfer-Encoding: 8bit)."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    text = msg.get_content()
    msg.set_content(text, cte="8bit")
    return msg.as_bytes(policy=email.policy.SMTP)


def test_a_message_needing_smtputf8_bounces_at_a_server_without_it(mailbox, remote_mx):
    remote_mx("remote.test", behaviour=Behaviour(drop_extensions=("SMTPUTF8",)))
    raw = "From: demo@example.test\r\nTo: x@remote.test\r\nSubject: Olá\r\n\r\nhi\r\n".encode()
    result = enqueue_outbound(raw, SENDER, ["x@remote.test"])
    deliver_outbound(result.outbound_id)
    recipient = only_recipient(result.outbound_id)
    assert recipient.state == "bounced" and "5.6.7" in recipient.last_reply


def test_a_message_needing_smtputf8_uses_it_where_offered(mailbox, remote_mx):
    far = remote_mx("remote.test")
    raw = "From: demo@example.test\r\nTo: josé@remote.test\r\nSubject: Olá\r\n\r\nhi\r\n".encode()
    result = enqueue_outbound(raw, SENDER, ["josé@remote.test"])
    deliver_outbound(result.outbound_id)
    [got] = far.received
    assert "SMTPUTF8" in got.mail_options and got.rcpt_tos == ["josé@remote.test"]


def test_starttls_is_used_when_the_far_side_offers_it(mailbox, remote_mx):
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("mx.remote.test").configure_cert(context)
    far = remote_mx("remote.test", tls_context=context)
    result = enqueue_outbound(make_message(), SENDER, ["x@remote.test"])
    deliver_outbound(result.outbound_id)
    [got] = far.received
    assert got.peer_tls is True


def test_mail_from_a_domain_with_a_key_is_dkim_signed_and_verifies(mailbox, remote_mx):
    far = remote_mx("remote.test")
    key = generate_dkim_key(mailbox.domain)
    raw = make_message(sender="Demo <demo@example.test>", subject="Signed")
    result = enqueue_outbound(raw, SENDER, ["x@remote.test"])
    deliver_outbound(result.outbound_id)
    [got] = far.received
    assert got.data.startswith(b"DKIM-Signature: ")
    signature = got.data.split(b"\r\n\r\n", 1)[0]
    assert b"a=rsa-sha256" in signature and b"c=relaxed/relaxed" in signature
    assert b"d=example.test" in signature and b"s=correio" in signature

    def dnsfunc(name, timeout=5):
        assert name == f"{key.dns_name}.".encode() or name == key.dns_name.encode()
        return key.txt_record.encode()

    assert dkim.verify(got.data, dnsfunc=dnsfunc)
    tampered = got.data.replace(b"Subject: Signed", b"Subject: Forged")
    assert not dkim.verify(tampered, dnsfunc=dnsfunc)


def test_a_smarthost_with_auth_takes_everything(mailbox, settings):
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        ok = auth_data.login == b"relayuser" and auth_data.password == b"s3cret"
        return AuthResult(success=ok, handled=False, auth_data=auth_data.login)

    handler = RecordingHandler()
    with serve_in_thread(lambda: start_sink(handler, authenticator=authenticator)) as relay:
        settings.CORREIO_SMARTHOST = f"127.0.0.1:{relay.port}"
        settings.CORREIO_SMARTHOST_USER = "relayuser"
        settings.CORREIO_SMARTHOST_PASSWORD = "s3cret"
        reset_transport()
        result = enqueue_outbound(make_message(), SENDER,
                                           ["a@one.test", "b@two.test"])
        deliver_outbound(result.outbound_id)
        # The same relay refusing the password defers, it does not bounce.
        settings.CORREIO_SMARTHOST_PASSWORD = "wrong"
        reset_transport()
        second = enqueue_outbound(make_message(), SENDER, ["c@three.test"])
        deliver_outbound(second.outbound_id)
    [got] = handler.received
    assert sorted(got.rcpt_tos) == ["a@one.test", "b@two.test"]  # one transaction for both
    assert got.login == b"relayuser"
    assert logins == [(b"relayuser", b"s3cret"), (b"relayuser", b"wrong")]
    recipient = only_recipient(second.outbound_id)
    assert recipient.state == "deferred" and "535" in recipient.last_reply


@pytest.fixture
def dns_world(settings):
    """A DNS server on loopback and two SMTP servers sharing one port on 127.0.0.3 and
    127.0.0.4 (MX records name hosts, not ports: CORREIO_RELAY_PORT says which)."""
    primary, backup = RecordingHandler(), RecordingHandler()
    with serve_in_thread(lambda: start_sink(primary, host="127.0.0.3")) as first:
        port = first.port
        with serve_in_thread(lambda: start_sink(backup, host="127.0.0.4", port=port)):
            zone = {
                ("pref.test", "MX"): ["20 backup.pref.test.", "10 down.pref.test.",
                                      "30 never.pref.test."],
                ("down.pref.test", "A"): ["127.0.0.2"],  # nothing listens there
                ("backup.pref.test", "A"): ["127.0.0.4"],
                ("never.pref.test", "A"): ["127.0.0.3"],
                ("best.test", "MX"): ["5 mx.best.test.", "50 backup.pref.test."],
                ("mx.best.test", "A"): ["127.0.0.3"],
                ("nullmx.test", "MX"): ["0 ."],
                ("plain.test", "A"): ["127.0.0.3"],
                ("empty.test", "TXT"): ['"no mail here"'],
            }
            server = DnsServer(zone)
            settings.CORREIO_DNS_NAMESERVERS = [f"127.0.0.1:{server.port}"]
            settings.CORREIO_RELAY_PORT = port
            reset_transport()
            try:
                yield primary, backup
            finally:
                server.close()


def test_mx_hosts_are_tried_in_preference_order_until_one_answers(mailbox, dns_world):
    primary, backup = dns_world
    result = enqueue_outbound(make_message(), SENDER, ["x@pref.test", "y@best.test"])
    deliver_outbound(result.outbound_id)
    assert [r.rcpt_tos for r in backup.received] == [["x@pref.test"]]  # 10 was down, 20 took it
    assert [r.rcpt_tos for r in primary.received] == [["y@best.test"]]  # 5 beats 50
    states = dict(OutboundRecipient.objects.values_list("address", "last_host"))
    assert states["x@pref.test"].startswith("backup.pref.test[127.0.0.4]")


def test_a_domain_without_mx_is_reached_at_its_own_address(mailbox, dns_world):
    primary, _ = dns_world
    result = enqueue_outbound(make_message(), SENDER, ["x@plain.test"])
    deliver_outbound(result.outbound_id)
    assert [r.rcpt_tos for r in primary.received] == [["x@plain.test"]]


@pytest.mark.parametrize(("address", "status"), [
    ("x@nullmx.test", "5.1.10"),  # RFC 7505 null MX
    ("x@nowhere.test", "5.1.2"),  # NXDOMAIN
    ("x@empty.test", "5.4.4"),  # neither MX nor address
])
def test_undeliverable_domains_bounce_at_once(mailbox, dns_world, address, status):
    result = enqueue_outbound(make_message(), SENDER, [address])
    deliver_outbound(result.outbound_id)
    recipient = only_recipient(result.outbound_id)
    assert recipient.state == "bounced" and recipient.last_reply.startswith(status)


def test_a_dns_server_that_does_not_answer_defers(mailbox, settings):
    import socket

    quiet = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    quiet.bind(("127.0.0.1", 0))
    try:
        settings.CORREIO_DNS_NAMESERVERS = [f"127.0.0.1:{quiet.getsockname()[1]}"]
        reset_transport()
        from mailcore.transports import get_transport

        get_transport().resolver.lifetime = 1.0
        result = enqueue_outbound(make_message(), SENDER, ["x@slow.test"])
        deliver_outbound(result.outbound_id)
    finally:
        quiet.close()
    recipient = only_recipient(result.outbound_id)
    assert recipient.state == "deferred" and recipient.last_reply.startswith("4.4.3")


def test_messages_to_one_host_share_a_session(mailbox, remote_mx):
    far = remote_mx("remote.test")
    for n in range(3):
        result = enqueue_outbound(make_message(), SENDER, [f"x{n}@remote.test"])
        deliver_outbound(result.outbound_id)
    assert [r.rcpt_tos for r in far.received] == [[f"x{n}@remote.test"] for n in range(3)]
    assert far.handler.sessions == 1


def test_a_kept_session_the_far_side_closed_is_replaced_without_losing_the_message(
    mailbox, remote_mx
):
    import time

    far = remote_mx("remote.test", behaviour=Behaviour(idle_timeout=0.3))
    first = enqueue_outbound(make_message(), SENDER, ["a@remote.test"])
    deliver_outbound(first.outbound_id)
    time.sleep(0.8)  # the server says 421 and hangs up on the idle session
    second = enqueue_outbound(make_message(), SENDER, ["b@remote.test"])
    deliver_outbound(second.outbound_id)
    assert only_recipient(second.outbound_id).state == "delivered"
    assert [r.rcpt_tos for r in far.received] == [["a@remote.test"], ["b@remote.test"]]
    assert far.handler.sessions == 2


def test_pipelined_commands_are_answered_in_order(mailbox, remote_mx):
    far = remote_mx("remote.test", behaviour=Behaviour(
        add_extensions=("PIPELINING",),
        rcpt_replies={"no@remote.test": ["550 5.1.1 no such user"],
                      "later@remote.test": ["452 4.2.2 over quota"]}))
    result = enqueue_outbound(
        make_message(), SENDER, ["yes@remote.test", "no@remote.test", "later@remote.test"])
    deliver_outbound(result.outbound_id)
    states = dict(OutboundRecipient.objects.values_list("address", "state"))
    assert states == {"yes@remote.test": "delivered", "no@remote.test": "bounced",
                      "later@remote.test": "deferred"}
    assert [r.rcpt_tos for r in far.received] == [["yes@remote.test"]]
    # Nobody accepted: DATA is refused (or emptied) and nothing is delivered.
    refused = enqueue_outbound(make_message(), SENDER, ["no@remote.test"])
    far.behaviour.rcpt_replies["no@remote.test"] = ["550 5.1.1 no such user"]
    deliver_outbound(refused.outbound_id)
    assert only_recipient(refused.outbound_id).state == "bounced"
    assert len(far.received) == 1
