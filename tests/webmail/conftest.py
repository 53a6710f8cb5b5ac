"""Fixtures for the webmail: signed-in clients, messages delivered through the service layer."""

import pytest
from django.test import Client

from mailcore.models import Message
from mailcore.services.delivery import deliver_message
from tests.conftest import PASSWORD


@pytest.fixture
def deliver(db, message_bytes):
    """Deliver a message built by ``tests.factories.make_message`` and return its row."""

    def _deliver(to: str = "demo@example.test", raw: bytes | None = None, **kwargs) -> Message:
        raw = raw if raw is not None else message_bytes(to=to, **kwargs)
        result = deliver_message(raw, [to])
        return Message.objects.get(pk=result.delivered[0].message_pk)

    return _deliver


@pytest.fixture
def client_for():
    """A test client signed in (through the login page) as the given mailbox."""

    def _client(mailbox) -> Client:
        client = Client()
        response = client.post("/login/", {"address": mailbox.address, "password": PASSWORD})
        assert response.status_code == 302, response.content[:500]
        return client

    return _client


@pytest.fixture
def web(mailbox, client_for):
    return client_for(mailbox)


@pytest.fixture
def other(make_mailbox):
    return make_mailbox("other@example.test")


HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def imap_listener(transactional_db):
    """Our IMAP listener on a loopback port (plain text on loopback, as Dovecot allows), for
    reading with imaplib what the webmail did; yields ``(host, port)``."""
    from mailcore.protocols.common.config import ListenerConfig
    from mailcore.protocols.imap import server
    from mailcore.services import credentials
    from tests.listeners import run_listener

    credentials.forget()
    config = ListenerConfig(imap_addr=("127.0.0.1", 0))
    with run_listener(lambda: server.start_servers(config)) as listener:
        yield "127.0.0.1", listener.port
