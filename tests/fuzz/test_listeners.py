"""Fuzzing real listeners on loopback (issue 12): random and near-valid command lines, DATA and
literals over a socket to the SMTP, POP3 and IMAP listeners. Properties: every reply is in the
protocol's grammar, one reply per command, no traceback in the log (no exception escaped a
session), the listener still greets the next client, and each input is answered within the
profile's deadline. Mail acknowledged with 250 is stored exactly once."""

import logging
import re
import socket
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailcore.models import Message
from mailcore.protocols.common.config import ListenerConfig
from mailcore.protocols.imap import server as imap_server
from mailcore.protocols.pop3.server import start_servers as start_pop3
from mailcore.protocols.smtp.policy import SMTPLimits
from mailcore.protocols.smtp.server import start_servers as start_smtp
from tests.fuzz.conftest import examples
from tests.listeners import run_listener

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# RFC 5321 §4.2: Reply-code = %x32-35 %x30-35 %x30-39, then SP or "-" and text.
SMTP_REPLY_LINE = re.compile(rb"[2-5][0-5][0-9]([ -][\x20-\x7e\x80-\xff]*)?\r\n\Z")
# RFC 1939 §3: a status indicator; RFC 2449 §8 adds the [CODE].
POP3_STATUS = re.compile(rb"(\+OK|-ERR)( [\x20-\x7e]*)?\r\n\Z")
# RFC 5034 §4: a SASL challenge, base64 (empty for PLAIN).
POP3_CHALLENGE = re.compile(rb"\+ [A-Za-z0-9+/=]*\r\n\Z")
# RFC 3501 §7: untagged "*", continuation "+", or the tag with OK/NO/BAD.
IMAP_LINE = re.compile(rb"(\* |\+ |\+\r|(?P<tag>[!#$&'+,\-./0-9:;<=>?@A-Z^_`a-z|~]+) (OK|NO|BAD)[ \r])")


class Conn:
    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.file = self.sock.makefile("rb")

    def line(self) -> bytes:
        """The next line; b"" once the server closed the connection (a reset included: a
        server that closes after its last reply resets a client still sending)."""
        try:
            return self.file.readline(100_000)
        except (ConnectionResetError, BrokenPipeError):
            return b""

    def send(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
        except (ConnectionResetError, BrokenPipeError):
            return False
        return True

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def no_tracebacks(caplog) -> None:
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, bad[0].getMessage()


# --- SMTP --------------------------------------------------------------------------------------

smtp_verbs = st.sampled_from(["HELO", "EHLO", "MAIL FROM:", "RCPT TO:", "DATA", "RSET", "NOOP",
                              "VRFY", "EXPN", "HELP", "QUIT", "STARTTLS", "AUTH", "BDAT",
                              "mail from:", "XCLIENT", ""])
smtp_args = st.one_of(
    st.sampled_from(["<demo@example.test>", "<>", "<a@remote.test> SIZE=100", "<x@y>",
                     "<demo@example.test> BODY=8BITMIME SMTPUTF8", "<\"q\"@example.test>",
                     "<@route:demo@example.test>", "<dé@example.test>", "SIZE=99999999999",
                     "client.test", " ", "<nobody@example.test>", "\t<a@b>", "PLAIN AAAA"]),
    st.text(alphabet=string.printable.replace("\r", "").replace("\n", ""), max_size=30),
)
smtp_lines = st.one_of(
    st.builds(lambda v, a: (v + a).encode("utf-8", "surrogateescape"), smtp_verbs, smtp_args),
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"")),
)
data_bodies = st.lists(st.one_of(
    st.sampled_from([b"Subject: fuzz", b"", b".", b"..", b".x", b"\r", b"a\nb", b"\x00",
                     b"x" * 1200, b"\xff\xfe"]),
    st.binary(max_size=50).map(lambda b: b.replace(b"\r\n", b"")),
), max_size=12)


@pytest.fixture
def smtp_port(make_mailbox):
    make_mailbox("demo@example.test")
    config = ListenerConfig(hostname="mail.example.test", smtp_addr=("127.0.0.1", 0),
                            max_message_size=20_000, max_connections_per_ip=1000,
                            extra={"smtp_limits": SMTPLimits(spool_threshold=2048)})
    with run_listener(lambda: start_smtp(config)) as listener:
        yield listener.port


def smtp_reply(conn: Conn) -> tuple[bytes, list[bytes]]:
    lines = []
    while True:
        line = conn.line()
        if not line:
            return b"", lines
        assert SMTP_REPLY_LINE.match(line), line
        lines.append(line)
        if line[3:4] != b"-":
            return line[:3], lines


@settings(max_examples=examples(150))
@given(commands=st.lists(smtp_lines, max_size=10), body=data_bodies, ehlo=st.booleans())
def test_smtp_answers_every_line_in_its_grammar(smtp_port, caplog, commands, body, ehlo):
    before = Message.objects.count()
    accepted = 0
    conn = Conn(smtp_port)
    try:
        assert smtp_reply(conn)[0] == b"220"
        script = ([b"EHLO fuzz.test", b"MAIL FROM:<a@remote.test>", b"RCPT TO:<demo@example.test>"]
                  if ehlo else []) + commands + [b"DATA"]
        for line in script:
            if not conn.send(line + b"\r\n"):
                break
            code, _ = smtp_reply(conn)
            if code in (b"", b"221", b"421", b"502"):
                break
            if code == b"354":
                # Dot-stuffed as RFC 5321 §4.5.2 asks of the client.
                conn.send(b"".join((b"." if chunk[:1] == b"." else b"") + chunk + b"\r\n"
                                           for chunk in body) + b".\r\n")
                code, _ = smtp_reply(conn)
                assert code in (b"250", b"451", b"500", b"550", b"552", b"554", b"421")
                accepted += code == b"250"
    finally:
        conn.close()
    assert Message.objects.count() == before + accepted
    no_tracebacks(caplog)
    again = Conn(smtp_port)
    assert again.line().startswith(b"220 ")
    again.close()


# --- POP3 --------------------------------------------------------------------------------------

pop3_lines = st.one_of(
    st.builds(lambda v, a: (v + a).encode("latin-1"),
              st.sampled_from(["USER ", "PASS ", "AUTH ", "AUTH PLAIN ", "CAPA", "STLS", "STAT",
                               "LIST ", "RETR ", "TOP 1 ", "UIDL", "NOOP", "RSET", "APOP ",
                               "user", ""]),
              st.text(alphabet=string.printable.replace("\r", "").replace("\n", ""),
                      max_size=30)),
    st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"")),
)


def pop3_multiline(line: bytes) -> bool:
    """Whether +OK to this line starts a multi-line reply (RFC 1939 §§5, 7; RFC 2449 §5;
    RFC 5034 §4 for AUTH without a mechanism), split as the server splits."""
    verb, _, rest = line.decode("latin-1").partition(" ")
    verb, args = verb.upper(), rest.split()
    return (verb == "CAPA" or verb in ("RETR", "TOP")
            or (verb in ("LIST", "UIDL", "AUTH") and not args))


@pytest.fixture
def pop3_port(make_mailbox):
    make_mailbox("demo@example.test")
    config = ListenerConfig(hostname="pop.example.test", pop3_addr=("127.0.0.1", 0),
                            max_connections_per_ip=1000)
    with run_listener(lambda: start_pop3(config)) as listener:
        yield listener.port


@settings(max_examples=examples(150))
@given(commands=st.lists(pop3_lines, min_size=1, max_size=12))
def test_pop3_answers_every_line_with_a_status_indicator(pop3_port, caplog, commands):
    conn = Conn(pop3_port)
    try:
        assert POP3_STATUS.match(conn.line())
        for line in commands:
            if line.upper().startswith(b"QUIT"):
                continue
            conn.send(line + b"\r\n")
            status = conn.line()
            if not status:
                break  # closed (too many bad commands, line far too long)
            if POP3_CHALLENGE.match(status):
                conn.send(b"*\r\n")  # RFC 5034 §4: the client cancels the exchange
                status = conn.line()
                assert status == b"" or status.startswith(b"-ERR"), status
                continue
            assert POP3_STATUS.match(status), status
            if status.startswith(b"+OK") and pop3_multiline(line):
                while conn.line() not in (b".\r\n", b""):
                    pass
            if status.startswith(b"-ERR too many bad commands"):
                break
    finally:
        conn.close()
    no_tracebacks(caplog)
    again = Conn(pop3_port)
    assert again.line().startswith(b"+OK")
    again.close()


# --- IMAP before login ---------------------------------------------------------------------------

imap_lines = st.one_of(
    st.builds(lambda v, a: f"a1 {v}{a}".encode("utf-8", "surrogateescape"),
              st.sampled_from(["CAPABILITY", "NOOP", "LOGIN ", "AUTHENTICATE ", "SELECT ",
                               "LIST ", "ID ", "ENABLE ", "FETCH ", "UID FETCH ", "STARTTLS",
                               "APPEND INBOX ", "XYZ", "LOGIN {3}"]),
              st.text(alphabet=string.printable.replace("\r", "").replace("\n", ""),
                      max_size=40)),
    st.binary(max_size=80).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"")),
)


@pytest.fixture
def imap_port(make_mailbox):
    make_mailbox("demo@example.test")
    config = ListenerConfig(hostname="imap.example.test", imap_addr=("127.0.0.1", 0),
                            max_connections_per_ip=1000)
    with run_listener(lambda: imap_server.start_servers(config)) as listener:
        yield listener.port


@settings(max_examples=examples(150))
@given(commands=st.lists(imap_lines, min_size=1, max_size=8))
def test_imap_answers_every_line_in_its_grammar_before_login(imap_port, caplog, commands):
    conn = Conn(imap_port)
    try:
        assert conn.line().startswith(b"* OK")
        for line in commands:
            conn.send(line + b"\r\n")
            while True:
                reply = conn.line()
                if not reply:
                    break
                assert IMAP_LINE.match(reply), reply
                if reply.startswith(b"+"):
                    literal = re.search(rb"\{(\d+)\+?\}\Z", line)
                    # The literal's octets, then the end of the command; or cancel SASL.
                    conn.send(b"x" * int(literal.group(1)) + b"\r\n" if literal else b"*\r\n")
                    continue
                # RFC 3501 §7.1.3: a line without a readable tag gets an untagged BAD.
                if not reply.startswith(b"* ") or reply.startswith((b"* BYE", b"* BAD")):
                    break
            if not reply or reply.startswith(b"* BYE"):
                break
    finally:
        conn.close()
    no_tracebacks(caplog)
    again = Conn(imap_port)
    assert again.line().startswith(b"* OK")
    again.close()
