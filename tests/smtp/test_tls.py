"""STARTTLS on the MX listener (RFC 3207), with certificates from trustme."""

import re
import smtplib
import ssl

import pytest
import trustme

from tests.factories import make_message
from tests.smtp.conftest import HOSTNAME, Wire, stored, swaks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
def tls_port(start_smtp, local, ca, tmp_path):
    cert = ca.issue_cert(HOSTNAME, "127.0.0.1", "localhost")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(key_path))
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    for blob in cert.cert_chain_pems[1:]:
        blob.write_to_path(str(cert_path), append=True)
    return start_smtp(tls_cert=str(cert_path), tls_key=str(key_path)).port


@pytest.fixture
def client_context(ca):
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def test_starttls_is_advertised_and_upgrades_the_session(tls_port, client_context):
    with smtplib.SMTP("127.0.0.1", tls_port) as client:
        client.ehlo("client.remote.test")
        assert client.has_extn("starttls")
        code, _ = client.starttls(context=client_context)
        assert code == 220
        client.ehlo("client.remote.test")
        # RFC 3207 §4.2: not offered again once in TLS.
        assert not client.has_extn("starttls")
        assert client.sock.version() in ("TLSv1.2", "TLSv1.3")
        client.sendmail("s@remote.test", ["demo@example.test"], make_message(subject="secret"))
    (raw,) = stored("demo@example.test")
    head = raw.split(b"\r\n\r\n")[0]
    assert b" with ESMTPS id " in head
    assert b"(using TLSv1." in head
    # The cipher's key size is a nested comment (RFC 5322 §3.2.2), kept as Postfix writes it.
    assert re.search(rb"\(using TLSv1\.[23] with cipher [A-Z0-9_-]+ \((\d+)/\1 bits\)\)", head), head


def test_the_certificate_verifies_against_the_configured_name(tls_port, client_context):
    client = Wire(tls_port)
    client.reply()
    client.cmd("EHLO client.remote.test")
    assert client.cmd("STARTTLS") == "220 2.0.0 Ready to start TLS"
    client.starttls(client_context, hostname=HOSTNAME)
    assert client.cmd("EHLO client.remote.test").startswith("250-")


def test_commands_injected_before_the_tls_handshake_are_discarded(tls_port, client_context):
    # CVE-2021-38371-style injection: plaintext pipelined after STARTTLS must not be run
    # inside the TLS session (RFC 3207 §4.2).
    client = Wire(tls_port)
    client.reply()
    client.cmd("EHLO client.remote.test")
    client.send(b"STARTTLS\r\nMAIL FROM:<injected@remote.test>\r\n")
    assert client.reply() == "220 2.0.0 Ready to start TLS"
    client.starttls(client_context)
    assert client.cmd("EHLO client.remote.test").startswith("250-")
    # Had the injected MAIL run, this would be a nested MAIL (503).
    assert client.cmd("MAIL FROM:<real@remote.test>") == "250 2.1.0 OK"


def test_after_starttls_the_client_must_say_ehlo_again(tls_port, client_context):
    client = Wire(tls_port)
    client.reply()
    client.cmd("EHLO client.remote.test")
    client.cmd("STARTTLS")
    client.starttls(client_context)
    assert client.cmd("MAIL FROM:<a@remote.test>").startswith("503 5.5.1")
    assert client.cmd("STARTTLS").startswith("503 5.5.1")


def test_a_failed_handshake_leaves_the_listener_serving(tls_port):
    client = Wire(tls_port)
    client.reply()
    client.cmd("EHLO client.remote.test")
    client.cmd("STARTTLS")
    client.send(b"this is not a TLS client hello\r\n" * 4)
    client.closed()
    again = Wire(tls_port)
    assert again.reply().startswith("220 ")


def test_swaks_delivers_over_starttls(tls_port):
    result = swaks(tls_port, "--tls", "--to", "demo@example.test", "--from", "s@remote.test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "TLS started" in result.stdout
    assert b" with ESMTPS id " in stored("demo@example.test")[0]
