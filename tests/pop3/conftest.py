"""POP3 listeners started in-process on loopback port 0, with trustme certificates."""

import poplib
import ssl
from contextlib import ExitStack

import pytest
import trustme

from mailcore.protocols.common.config import ListenerConfig
from mailcore.protocols.pop3.server import Pop3Options, start_servers
from mailcore.services import credentials, delivery
from tests.conftest import PASSWORD
from tests.listeners import run_listener

HOSTNAME = "pop.example.test"


class Tls:
    def __init__(self, directory):
        self.ca = trustme.CA()
        # fetchmail wants the name in the subject CN as well as in the SANs.
        cert = self.ca.issue_cert(HOSTNAME, "localhost", "127.0.0.1", common_name=HOSTNAME)
        self.cert_path = str(directory / "server.pem")
        self.ca_path = str(directory / "ca.pem")
        cert.private_key_and_cert_chain_pem.write_to_path(self.cert_path)
        self.ca.cert_pem.write_to_path(self.ca_path)

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


@pytest.fixture(scope="session")
def tls(tmp_path_factory):
    return Tls(tmp_path_factory.mktemp("pop3-tls"))


class Pop3Server:
    """A running listener: ``port`` (POP3 with STLS) and ``tls_port`` (POP3S) when bound."""

    def __init__(self, listener, config):
        self.listener = listener
        self.config = config
        ports = iter(listener.ports)
        self.port = next(ports) if config.pop3_addr else None
        self.tls_port = next(ports) if config.pop3s_addr else None

    def connect(self, timeout: float = 10) -> poplib.POP3:
        return poplib.POP3("127.0.0.1", self.port, timeout=timeout)

    def login(self, user: str = "demo@example.test", password: str = PASSWORD) -> poplib.POP3:
        client = self.connect()
        client.user(user)
        client.pass_(password)
        return client


@pytest.fixture
def start_pop3(transactional_db, tls):
    """``start_pop3(with_tls=True, pop3s=False, config={ListenerConfig fields},
    **Pop3Options fields)`` -> Pop3Server."""
    with ExitStack() as stack:

        def start(
            *, with_tls: bool = True, pop3s: bool = False, config: dict | None = None, **options
        ) -> Pop3Server:
            credentials.forget()
            config = ListenerConfig(
                **(config or {}),
                hostname=HOSTNAME,
                pop3_addr=("127.0.0.1", 0),
                pop3s_addr=("127.0.0.1", 0) if pop3s else None,
                tls_cert=tls.cert_path if with_tls else None,
                tls_key=tls.cert_path if with_tls else None,
                extra={"pop3": Pop3Options(**options)},
            )
            listener = stack.enter_context(run_listener(lambda: start_servers(config)))
            return Pop3Server(listener, config)

        yield start


@pytest.fixture
def pop3_server(start_pop3):
    return start_pop3()


@pytest.fixture
def deliver(mailbox):
    """Deliver raw messages to the demo mailbox's INBOX through the service layer."""

    def _deliver(*raws: bytes) -> None:
        for raw in raws:
            delivery.deliver_message(raw, [mailbox.address])

    return _deliver
