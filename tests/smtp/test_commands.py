"""The MX listener's command set and replies (RFC 5321 §4.1, §4.2; RFC 2034 enhanced codes),
spoken over a raw socket and through smtplib."""

import re
import smtplib

import pytest

from tests.smtp.conftest import HOSTNAME, Wire, stored

pytestmark = pytest.mark.django_db(transaction=True)
ENHANCED = re.compile(r"^[245]\d\d[ -][245]\.\d{1,3}\.\d{1,3} ")


def test_the_greeting_names_the_configured_host_without_a_version(port):
    client = Wire(port)
    assert client.reply() == f"220 {HOSTNAME} ESMTP Correio"


def test_ehlo_advertises_size_8bitmime_smtputf8_pipelining_and_enhanced_codes(port):
    with smtplib.SMTP("127.0.0.1", port) as client:
        code, _ = client.ehlo("client.remote.test")
        assert code == 250
        features = client.esmtp_features
    assert features["size"] == str(25 * 1024 * 1024)
    for name in ("8bitmime", "smtputf8", "pipelining", "enhancedstatuscodes", "help"):
        assert name in features
    # No certificate configured: no STARTTLS. The MX never offers AUTH.
    assert "starttls" not in features and "auth" not in features


def test_ehlo_advertises_the_configured_size_limit(start_smtp, local):
    port = start_smtp(max_message_size=12345).port
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo("client.remote.test")
        assert client.esmtp_features["size"] == "12345"


def test_helo_works_for_old_clients_and_mail_can_follow(wire):
    assert wire.cmd("HELO old.remote.test") == f"250 {HOSTNAME}"
    assert wire.cmd("MAIL FROM:<a@remote.test>") == "250 2.1.0 OK"
    # Without EHLO, ESMTP parameters are a syntax error (RFC 5321 §4.1.1.11).
    assert wire.cmd("RSET") == "250 2.0.0 OK"
    assert wire.cmd("MAIL FROM:<a@remote.test> SIZE=10").startswith("501 5.5.4")


def test_helo_and_ehlo_need_a_name(wire):
    assert wire.cmd("HELO").startswith("501 5.5.4")
    assert wire.cmd("EHLO").startswith("501 5.5.4")


def test_noop_rset_and_quit_reply_with_enhanced_codes(wire):
    assert wire.cmd("NOOP") == "250 2.0.0 OK"
    assert wire.cmd("NOOP ignored argument") == "250 2.0.0 OK"
    assert wire.cmd("RSET") == "250 2.0.0 OK"
    assert wire.cmd("RSET now").startswith("501 5.5.4")
    assert wire.cmd("QUIT") == "221 2.0.0 Bye"
    assert wire.closed()


def test_vrfy_answers_252_and_never_reveals_whether_a_user_exists(wire):
    known = wire.cmd("VRFY demo@example.test")
    unknown = wire.cmd("VRFY nobody@example.test")
    assert known == unknown
    assert known.startswith("252 2.5.2 ")
    assert wire.cmd("VRFY").startswith("501 5.5.4")


def test_expn_is_not_supported(wire):
    assert wire.cmd("EXPN staff@example.test").startswith("502 5.5.1")


def test_help_lists_the_commands_and_explains_one(wire):
    listing = wire.cmd("HELP")
    assert listing.startswith("214 2.0.0 Supported commands:")
    for name in ("DATA", "EHLO", "HELO", "MAIL", "NOOP", "QUIT", "RCPT", "RSET", "VRFY"):
        assert name in listing.split()
    assert "AUTH" not in listing
    assert wire.cmd("HELP MAIL").startswith("214 2.0.0 Syntax: MAIL FROM:<address>")
    assert wire.cmd("HELP FOO").startswith("504 5.5.1")


def test_unknown_commands_get_500_without_echoing_them(wire):
    assert wire.cmd("FROB <script>") == "500 5.5.2 Error: command not recognized"


def test_commands_out_of_sequence_get_503(port, local):
    client = Wire(port)
    client.reply()
    assert client.cmd("MAIL FROM:<a@remote.test>").startswith("503 5.5.1")
    client.cmd("EHLO client.remote.test")
    assert client.cmd("RCPT TO:<demo@example.test>").startswith("503 5.5.1")
    assert client.cmd("DATA").startswith("503 5.5.1")
    assert client.cmd("MAIL FROM:<a@remote.test>") == "250 2.1.0 OK"
    assert client.cmd("MAIL FROM:<a@remote.test>").startswith("503 5.5.1")
    # RFC 5321 §3.3: DATA with no accepted recipient.
    assert client.cmd("DATA").startswith("554 5.5.1")


def test_malformed_mail_and_rcpt_commands_get_syntax_errors(wire):
    assert wire.cmd("MAIL").startswith("501 5.5.4")
    assert wire.cmd("MAIL TO:<a@remote.test>").startswith("501 5.5.4")
    assert wire.cmd("MAIL FROM:<a@@remote>").startswith("553 5.1.7")
    assert wire.cmd("MAIL FROM:<a@remote.test> FROB=1").startswith("555 5.5.4")
    assert wire.cmd("MAIL FROM:<a@remote.test> BODY=BINARYMIME").startswith("501 5.5.4")
    assert wire.cmd("MAIL FROM:<a@remote.test> SIZE=big").startswith("501 5.5.4")
    assert wire.cmd("MAIL FROM:<a@remote.test>") == "250 2.1.0 OK"
    assert wire.cmd("RCPT FROM:<demo@example.test>").startswith("501 5.5.4")
    assert wire.cmd("RCPT TO:<>").startswith("501 5.5.4")
    assert wire.cmd("RCPT TO:<demo@example.test> NOTIFY=NEVER").startswith("555 5.5.4")


def test_auth_is_refused_on_the_mx_listener(wire):
    assert wire.cmd("AUTH PLAIN AGRlbW8AcGFzc3dvcmQ=").startswith("503 5.5.1")


def test_starttls_without_a_certificate_is_refused_with_454(wire):
    assert wire.cmd("STARTTLS").startswith("454 4.7.0")


def test_every_error_reply_carries_an_enhanced_status_code(wire):
    replies = [
        wire.cmd(line)
        for line in (
            "FROB",
            "MAIL",
            "RCPT TO:<demo@example.test>",
            "DATA",
            "MAIL FROM:<a@remote.test>",
            "RCPT TO:<nobody@example.test>",
            "RCPT TO:<someone@elsewhere.test>",
            "VRFY",
            "EXPN x",
            "X" * 600,
        )
    ]
    for reply in replies:
        assert ENHANCED.match(reply), reply


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x1b", "\x7f", "\r", "\t"])
def test_a_control_character_in_mail_from_or_rcpt_to_gets_501_5_5_2(wire, char):
    assert wire.cmd(f"MAIL FROM:<a{char}b@remote.test>").startswith("501 5.5.2 ")
    assert wire.cmd("MAIL FROM:<a@remote.test>") == "250 2.1.0 OK"
    assert wire.cmd(f"RCPT TO:<de{char}mo@example.test>").startswith("501 5.5.2 ")
    if char != "\t":  # a TAB between parameters is tolerated; in a parameter, not
        assert wire.cmd(f"RCPT TO:<demo@example.test> X=a{char}b").startswith("501 5.5.2 ")
    assert wire.cmd("RCPT TO:<demo@example.test>") == "250 2.1.5 OK"


def test_smtplib_with_a_nul_in_the_sender_is_refused_and_nothing_is_stored(port):
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo("client.remote.test")
        code, message = client.mail("evil\x00@remote.test")
        assert (code, message[:5]) == (501, b"5.5.2")
        code, _ = client.rcpt("demo@example.test")
        assert code == 503  # no transaction was opened
    assert stored("demo@example.test") == []


@pytest.mark.slow
def test_one_session_may_send_more_than_a_thousand_messages(port):
    """Postfix has no per-session cap on transactions (issue 15): 1,001 messages over one
    connection are all accepted, none cut with 421."""
    message = b"Subject: many\r\n\r\nshort\r\n"
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.remote.test")
        for _ in range(1001):
            client.sendmail("s@remote.test", ["demo@example.test"], message)
        assert client.noop()[0] == 250
    assert len(stored("demo@example.test")) == 1001
