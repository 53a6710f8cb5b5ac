"""Fixtures for Sieve tests: the MX listener and recording remote MX servers of the SMTP and
outbound suites, and a helper to install a user's active script through the service."""

import pytest

from mailcore.services import filters
from tests.outbound.conftest import fresh_transport, remote_mx  # noqa: F401
from tests.smtp.conftest import start_smtp  # noqa: F401


@pytest.fixture
def install_script():
    def install(mailbox, text, name="main"):
        filters.put_script(mailbox, name, text, activate=True)

    return install
