"""Fixtures for the outbound queue tests: recording SMTP servers on loopback standing in for
remote MX hosts, and the routes that point remote domains at them."""

import pytest

from mailcore.services.dkim import forget_cached_keys
from mailcore.transports import reset_transport
from tests.outbound.sink import Behaviour, RecordingHandler, serve_in_thread, start_sink


@pytest.fixture(autouse=True)
def fresh_transport(settings):
    """Relay settings change per test; the transport is rebuilt from them each time. Short
    timeouts keep the failure cases quick. The DKIM key cache is emptied too: a key made in a
    test's rolled-back transaction never reaches the on-commit hook that would forget it."""
    settings.CORREIO_MX_OVERRIDES = {}
    settings.CORREIO_RELAY_COMMAND_TIMEOUT = 10
    settings.CORREIO_RELAY_DATA_TERM_TIMEOUT = 10
    settings.CORREIO_RELAY_CONNECT_TIMEOUT = 5
    reset_transport()
    forget_cached_keys()
    yield
    reset_transport()
    forget_cached_keys()


class Remote:
    """A recording SMTP server and the settings that route ``domains`` to it."""

    def __init__(self, listener, handler: RecordingHandler):
        self.listener = listener
        self.handler = handler
        self.port = listener.port

    @property
    def received(self):
        return self.handler.received

    @property
    def behaviour(self) -> Behaviour:
        return self.handler.behaviour


@pytest.fixture
def remote_mx(settings):
    """``remote_mx("remote.test", "other.test")`` starts a server routed for those domains."""
    started = []

    def start(*domains: str, behaviour: Behaviour | None = None, tls_context=None) -> Remote:
        handler = RecordingHandler(behaviour)
        context = serve_in_thread(lambda: start_sink(handler, tls_context=tls_context))
        listener = context.__enter__()
        started.append(context)
        overrides = dict(settings.CORREIO_MX_OVERRIDES)
        for domain in domains:
            overrides[domain] = [("127.0.0.1", listener.port)]
        settings.CORREIO_MX_OVERRIDES = overrides
        reset_transport()
        return Remote(listener, handler)

    yield start
    for context in reversed(started):
        context.__exit__(None, None, None)
