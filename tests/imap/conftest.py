"""Fixtures for the IMAP tests: a real listener on loopback ports (plain with STARTTLS, and
implicit TLS with a trustme certificate), and helpers to log in with imaplib and imapclient."""

import imaplib
import ssl
from dataclasses import replace

import pytest
import trustme

from mailcore.protocols.common.config import ListenerConfig
from mailcore.protocols.imap import server
from mailcore.services import credentials
from tests.conftest import PASSWORD
from tests.listeners import run_listener

ADDRESS = "demo@example.test"


@pytest.fixture(scope="session")
def tls_ca():
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_files(tls_ca, tmp_path_factory):
    # mbsync 1.4 insists on a common name as well as the subject alternative names.
    cert = tls_ca.issue_cert("127.0.0.1", "localhost", "mail.example.test",
                             common_name="127.0.0.1")
    folder = tmp_path_factory.mktemp("imap-tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    ca_path = folder / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(ca_path))
    return cert_path, key_path, ca_path


@pytest.fixture
def client_tls(tls_ca):
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    return context


@pytest.fixture
def imap_config(tls_files):
    cert, key, _ca = tls_files
    return ListenerConfig(
        tls_cert=str(cert), tls_key=str(key), imap_addr=("127.0.0.1", 0),
        imaps_addr=("127.0.0.1", 0),
    )


@pytest.fixture
def start_imap(imap_config):
    """Start a listener with option overrides; yields the running listener."""
    started = []

    def _start(config_overrides: dict | None = None, **options):
        credentials.forget()
        config = replace(imap_config, **(config_overrides or {}))
        if options:
            config = replace(config, extra={"imap": server.ImapOptions(**options)})
        context = run_listener(lambda: server.start_servers(config))
        listener = context.__enter__()
        started.append(context)
        return listener

    yield _start
    for context in reversed(started):
        context.__exit__(None, None, None)


@pytest.fixture
def imap(start_imap, mailbox):
    """The default listener, with the demo mailbox made."""
    return start_imap()


@pytest.fixture
def connect(imap):
    clients = []

    def _connect(login: bool = True):
        client = imaplib.IMAP4("127.0.0.1", imap.ports[0], timeout=20)
        if login:
            client.login(ADDRESS, PASSWORD)
        clients.append(client)
        return client

    yield _connect
    for client in clients:
        try:
            client.logout()
        except Exception:
            pass
