"""Argon2id at OWASP's parameters for new passwords, and older hashes (PBKDF2, Argon2 with other
parameters) re-made at the next successful login through any door."""

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.hashers import make_password

from mailcore.exceptions import AuthFailed
from mailcore.services import accounts, credentials
from tests.conftest import PASSWORD
from tests.signin.conftest import DOORS

pytestmark = pytest.mark.django_db(transaction=True)
ADDRESS = "demo@example.test"
OWASP = "argon2$argon2id$v=19$m=19456,t=2,p=1$"


@pytest.fixture
def production_hashers(settings):
    from webmail import settings as project

    settings.PASSWORD_HASHERS = project.PASSWORD_HASHERS
    assert django_settings.PASSWORD_HASHERS[0] == "mailcore.hashers.Argon2idHasher"


def test_new_passwords_are_hashed_with_argon2id_at_owasp_parameters(
    production_hashers, make_mailbox
):
    mailbox = make_mailbox(ADDRESS)
    assert mailbox.user.password.startswith(OWASP)
    assert credentials.authenticate(ADDRESS, PASSWORD) == mailbox


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("old", ["pbkdf2_sha256", "django-argon2"])
def test_an_older_hash_is_upgraded_at_the_next_login(
    production_hashers, doors, mailbox, door, old
):
    user = mailbox.user
    if old == "pbkdf2_sha256":
        user.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    else:
        from django.contrib.auth.hashers import Argon2PasswordHasher

        user.password = Argon2PasswordHasher().encode(PASSWORD, "abcdefghijklmnop")
    user.save()
    before = user.password
    assert doors.login(door, "127.0.0.1", ADDRESS, "not it") == "failed"
    user.refresh_from_db()
    assert user.password == before  # a wrong password changes nothing
    assert doors.login(door, "127.0.0.1", ADDRESS, PASSWORD) == "ok"
    user.refresh_from_db()
    assert user.password.startswith(OWASP)
    credentials.forget()
    assert doors.login(door, "127.0.0.1", ADDRESS, PASSWORD) == "ok"


def test_a_disabled_account_is_refused_even_with_the_right_password(production_hashers, mailbox):
    accounts.set_password(mailbox, PASSWORD)
    mailbox.active = False
    mailbox.save()
    with pytest.raises(AuthFailed):
        credentials.authenticate(ADDRESS, PASSWORD)
