"""ManageSieve (RFC 5804) with a real client (sievelib) and raw transcripts: every command,
STARTTLS, the shared login throttle, and the limits."""

import base64
import socket
import time

import pytest
from sievelib.managesieve import Client

from mailcore.models import SieveScript
from tests.conftest import PASSWORD
from tests.managesieve.conftest import Raw

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.filterwarnings("ignore:Credentials are sent over an unencrypted")]

SCRIPT = 'require "fileinto";\nif header :contains "subject" "x" {\n  fileinto "X";\n}\n'


@pytest.fixture
def demo(make_mailbox):
    return make_mailbox("demo@example.test")


def plain(user="demo@example.test", password=PASSWORD) -> bytes:
    return base64.b64encode(f"\0{user}\0{password}".encode())


def test_sievelib_client_manages_scripts(start_managesieve, demo):
    client = Client("127.0.0.1", start_managesieve().port)
    assert client.connect("demo@example.test", PASSWORD, authmech="PLAIN")
    assert "fileinto" in client.get_sieve_capabilities()
    assert client.havespace("main", len(SCRIPT))
    assert client.putscript("main", SCRIPT)
    assert client.putscript("other", "keep;\n")
    assert client.setactive("main")
    assert client.listscripts() == ("main", ["other"])
    assert client.getscript("main").replace("\r\n", "\n").strip() == SCRIPT.strip()
    assert client.renamescript("other", "spare")
    assert not client.renamescript("spare", "main") and b"ALREADYEXISTS" in client.errcode
    assert not client.deletescript("main") and client.errcode == b"ACTIVE"
    assert client.deletescript("spare")
    assert client.checkscript("keep;")
    assert not client.checkscript('require "fileinto";\n\nfileinto;\n')
    assert b"line 3" in client.errmsg
    client.logout()
    assert SieveScript.objects.get(mailbox=demo, active=True).name == "main"


def test_putscript_reports_syntax_errors_with_their_line(start_managesieve, demo):
    client = Client("127.0.0.1", start_managesieve().port)
    assert client.connect("demo@example.test", PASSWORD, authmech="PLAIN")
    assert not client.putscript("bad", 'if true {\n  keep;\n  frobnicate;\n}\n')
    assert client.errmsg.startswith(b"line 3: unknown command")
    assert not SieveScript.objects.filter(mailbox=demo).exists()


def test_sievelib_client_over_starttls(start_managesieve, demo, sieve_tls, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(sieve_tls[2]))
    client = Client("127.0.0.1", start_managesieve().port)
    assert client.connect("demo@example.test", PASSWORD, starttls=True, authmech="PLAIN")
    assert client.putscript("tls", "keep;")
    client.logout()


def test_raw_transcript_and_authenticate_with_continuation(start_managesieve, demo):
    raw = Raw(start_managesieve().port)
    greeting = raw.read_reply()
    assert b'"SASL" "PLAIN"' in greeting and b'"STARTTLS"' in greeting
    assert greeting.endswith(b'OK "ManageSieve ready"\r\n')
    assert raw.command(b"LISTSCRIPTS\r\n").startswith(b'NO "LISTSCRIPTS is not allowed now"')
    raw.send(b'AUTHENTICATE "PLAIN"\r\n')
    time.sleep(0.2)
    assert raw.sock.recv(100) == b'""\r\n'
    assert raw.command(b'"' + plain() + b'"\r\n') == b'OK "Logged in"\r\n'
    body = b"keep;\r\n"
    assert raw.command(b'PUTSCRIPT "a" {%d+}\r\n' % len(body) + body + b"\r\n") == b"OK\r\n"
    assert raw.command(b'SETACTIVE "a"\r\n') == b"OK\r\n"
    assert raw.command(b"LISTSCRIPTS\r\n") == b'"a" ACTIVE\r\nOK\r\n'
    assert raw.command(b'GETSCRIPT "a"\r\n') == b"{7}\r\nkeep;\r\n\r\nOK\r\n"
    assert raw.command(b'GETSCRIPT "zz"\r\n').startswith(b"NO (NONEXISTENT)")
    assert raw.command(b'NOOP "t1"\r\n') == b'OK (TAG "t1") "Done"\r\n'
    assert raw.command(b"LOGOUT\r\n") == b'OK "Logout"\r\n'
    raw.close()


def test_wrong_passwords_use_the_shared_throttle_and_end_the_session(start_managesieve, demo,
                                                                    settings):
    raw = Raw(start_managesieve().port)
    raw.read_reply()
    for _ in range(2):
        assert raw.command(b'AUTHENTICATE "PLAIN" "' + plain(password="nope") + b'"\r\n') \
            == b'NO "authentication failed"\r\n'
    last = raw.command(b'AUTHENTICATE "PLAIN" "' + plain(password="nope") + b'"\r\n')
    assert last.startswith(b'NO "authentication failed"\r\n')
    assert raw.read_reply() == b'BYE "too many failed logins"\r\n'
    from mailcore.models import LoginThrottle
    assert LoginThrottle.objects.get(login="demo@example.test", client="127.0.0.1").attempts == 3


def test_limits_on_scripts_count_and_size(start_managesieve, demo, settings):
    settings.CORREIO_SIEVE_MAX_SCRIPTS = 2
    settings.CORREIO_SIEVE_MAX_SCRIPT_SIZE = 100
    client = Client("127.0.0.1", start_managesieve().port)
    assert client.connect("demo@example.test", PASSWORD, authmech="PLAIN")
    assert client.putscript("a", "keep;") and client.putscript("b", "keep;")
    assert not client.putscript("c", "keep;") and client.errcode == b"QUOTA/MAXSCRIPTS"
    assert not client.havespace("a", 101) and client.errcode == b"QUOTA/MAXSIZE"
    assert not client.putscript("a", "#" * 200) and client.errcode == b"QUOTA/MAXSIZE"


def test_oversize_lines_and_literals_end_the_session(start_managesieve, demo):
    listener = start_managesieve(max_literal=1000)
    raw = Raw(listener.port)
    raw.read_reply()
    assert raw.command(b"CAPABILITY " + b"x" * 2000 + b"\r\n") == b'BYE "line too long"\r\n'
    raw = Raw(listener.port)
    raw.read_reply()
    assert raw.command(b'AUTHENTICATE "PLAIN" {5000+}\r\n') == b'BYE "literal too large"\r\n'
    raw = Raw(listener.port)
    raw.read_reply()
    raw.command(b'AUTHENTICATE "PLAIN" "' + plain() + b'"\r\n')
    assert raw.command(b'PUTSCRIPT "a" {5000+}\r\n') == b'BYE "literal too large"\r\n'


def test_an_idle_client_is_dropped_before_login(start_managesieve, demo):
    raw = Raw(start_managesieve(preauth_timeout=0.5).port)
    raw.read_reply()
    time.sleep(1.0)
    assert raw.read_reply() == b'BYE "idle for too long"\r\n'


def test_garbage_gets_no_and_too_much_garbage_ends_the_session(start_managesieve, demo):
    raw = Raw(start_managesieve(max_bad_commands=3).port)
    raw.read_reply()
    assert raw.command(b"FROB\r\n") == b'NO "unknown command FROB"\r\n'
    assert raw.command(b'"quoted first\r\n').startswith(b"NO")
    assert raw.command(b"\x00\xff\r\n").startswith(b"NO")
    assert raw.read_reply() == b'BYE "too many bad commands"\r\n'
    with pytest.raises((ConnectionError, socket.timeout, OSError)):
        for _ in range(3):
            raw.send(b"NOOP\r\n")
            if not raw.sock.recv(100):
                raise ConnectionError()
