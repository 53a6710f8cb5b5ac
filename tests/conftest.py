"""Fixtures shared by the whole suite: domains, mailboxes and messages made through the service
layer, and the check that CI's PostgreSQL + Redis run really uses both."""

import os

import pytest
from django.conf import settings

from mailcore.services import accounts
from tests.factories import make_message

PASSWORD = "correct horse battery staple"


def pytest_configure(config):
    # PBKDF2 at 1,000,000 rounds costs 0.3 s a check on these machines; one test module checks
    # the real hasher, the rest use a fast one so that hundreds of logins stay cheap.
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]
    # The throttle's waits, scaled down (tests of the waits themselves set their own).
    settings.CORREIO_AUTH_DELAY_MS = 10
    settings.CORREIO_AUTH_MAX_DELAY_MS = 100
    settings.CORREIO_AUTH_SOFT_DELAY_MS = 50


@pytest.fixture(scope="session", autouse=True)
def required_services(django_db_setup, django_db_blocker):
    """With CORREIO_REQUIRE_SERVICES=1 (CI), the run must be on PostgreSQL and Redis.

    At the end, on PostgreSQL, report and end sessions still attached to the test database (a
    process a test killed on purpose, such as a SIGKILLed worker's pool child, may leave one), so
    that dropping the test database succeeds and the next run starts clean."""
    from django.db import connection

    if os.environ.get("CORREIO_REQUIRE_SERVICES") == "1":
        assert connection.vendor == "postgresql", "CI run must use PostgreSQL"
        import redis

        redis.Redis.from_url(settings.REDIS_URL).ping()
    yield
    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, application_name, state, left(query, 120) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        leftovers = cursor.fetchall()
        for pid, app, state, query in leftovers:
            print(f"\nleft-over PostgreSQL session {pid} ({app or '-'}, {state}): {query}")
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.fixture
def domain(db):
    return accounts.create_domain("example.test")


@pytest.fixture
def make_mailbox(domain):
    def _make(address: str = "demo@example.test", password: str = PASSWORD, **kwargs):
        return accounts.create_mailbox(address, password, **kwargs)

    return _make


@pytest.fixture
def mailbox(make_mailbox):
    return make_mailbox()


@pytest.fixture
def inbox(mailbox):
    return mailbox.folders.get(role="inbox")


@pytest.fixture
def message_bytes():
    return make_message


@pytest.fixture(autouse=True)
def outbound_tasks_not_published(settings):
    """Tests run delivery tasks as plain functions: queueing mail publishes nothing to a broker
    (the Celery worker tests turn publishing on in their worker's environment)."""
    settings.CORREIO_OUTBOUND_DISPATCH = False


@pytest.fixture(autouse=True)
def sender_auth_off_without_dns(settings):
    """Sender authentication asks DNS for every message at the MX; tests have no DNS server
    unless they start one, so it is off here and tests/trust turns it on with a real dnsmasq
    (the ``dns_zone`` fixture)."""
    settings.CORREIO_SENDER_AUTH = False
