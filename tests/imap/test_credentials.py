"""The cache of verified credentials behind IMAP and POP3 logins: a second login skips the
password hash, and nothing that should refuse a login is skipped with it (a new password, a
disabled account or domain, the shared failed-login throttle)."""

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.test import override_settings

from mailcore.exceptions import AuthFailed, AuthThrottled
from mailcore.models import LoginThrottle
from mailcore.services import accounts, credentials
from tests.conftest import PASSWORD

ADDRESS = "demo@example.test"


class CountingHasher(MD5PasswordHasher):
    """A real (fast) hasher that counts the password checks it runs."""

    algorithm = "counting_md5"
    verified = 0

    def verify(self, password, encoded):
        CountingHasher.verified += 1
        return super().verify(password, encoded)


@pytest.fixture
def counting(db):
    CountingHasher.verified = 0
    credentials.forget()
    with override_settings(PASSWORD_HASHERS=["tests.imap.test_credentials.CountingHasher"]):
        yield CountingHasher
    credentials.forget()


@pytest.fixture
def account(counting, mailbox):
    accounts.set_password(mailbox, PASSWORD)  # hashed by the counting hasher
    return mailbox


def test_a_second_login_does_not_run_the_password_hash(account, counting):
    first = credentials.authenticate(ADDRESS, PASSWORD, "127.0.0.1")
    second = credentials.authenticate(ADDRESS.upper(), PASSWORD, "127.0.0.2")
    assert first.pk == second.pk == account.pk
    assert second.address == ADDRESS
    assert counting.verified == 1


def test_a_wrong_password_is_never_served_from_the_cache(account, counting):
    credentials.authenticate(ADDRESS, PASSWORD)
    with pytest.raises(AuthFailed):
        credentials.authenticate(ADDRESS, PASSWORD + "x")
    assert counting.verified == 2


def test_a_password_change_invalidates_what_was_verified(account):
    credentials.authenticate(ADDRESS, PASSWORD)
    accounts.set_password(account, "a brand new secret")
    with pytest.raises(AuthFailed):
        credentials.authenticate(ADDRESS, PASSWORD)
    assert credentials.authenticate(ADDRESS, "a brand new secret").pk == account.pk


@pytest.mark.parametrize("what", ["mailbox", "user", "domain"])
def test_a_disabled_account_or_domain_cannot_log_in_from_the_cache(account, what):
    credentials.authenticate(ADDRESS, PASSWORD)
    target = {"mailbox": account, "user": account.user, "domain": account.domain}[what]
    target.active = False  # Mailbox/Domain
    target.is_active = False  # User
    target.save()
    with pytest.raises(AuthFailed):
        credentials.authenticate(ADDRESS, PASSWORD)


def test_the_shared_throttle_still_applies_to_remembered_credentials(account, settings):
    credentials.authenticate(ADDRESS, PASSWORD, "192.0.2.7")
    for _ in range(settings.CORREIO_AUTH_MAX_FAILURES):
        with pytest.raises(AuthFailed):
            credentials.authenticate(ADDRESS, "a guess", "192.0.2.7", max_wait=60)
    verified = counting_before = CountingHasher.verified
    with pytest.raises(AuthThrottled):
        credentials.authenticate(ADDRESS, PASSWORD, "192.0.2.7")
    assert CountingHasher.verified == counting_before  # refused from the cache, no hash
    # Another client address is not throttled, and its success leaves the pair at .7 alone.
    assert credentials.authenticate(ADDRESS, PASSWORD, "192.0.2.9").pk == account.pk
    assert CountingHasher.verified == verified
    assert LoginThrottle.objects.filter(login=ADDRESS, client="192.0.2.7").exists()
    assert not LoginThrottle.objects.filter(login=ADDRESS, client="192.0.2.9").exists()
