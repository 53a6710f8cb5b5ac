"""POP3 logins go through the cache of verified credentials: a client polling every minute pays
the password hash once, and a changed password is refused at once."""

import poplib

import pytest
from django.test import override_settings

from mailcore.services import accounts
from tests.conftest import PASSWORD
from tests.imap.test_credentials import CountingHasher

pytestmark = pytest.mark.django_db(transaction=True)


def test_repeated_pop3_logins_hash_the_password_once(start_pop3, mailbox):
    CountingHasher.verified = 0
    with override_settings(PASSWORD_HASHERS=["tests.imap.test_credentials.CountingHasher"]):
        accounts.set_password(mailbox, PASSWORD)
        server = start_pop3()
        for _ in range(3):
            client = server.login()
            assert client.stat() == (0, 0)
            client.quit()
        assert CountingHasher.verified == 1
        accounts.set_password(mailbox, "changed")
        client = server.connect()
        client.user(mailbox.address)
        with pytest.raises(poplib.error_proto, match="AUTH"):
            client.pass_(PASSWORD)
        client.quit()
