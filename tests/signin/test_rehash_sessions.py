"""A re-hash at login (PBKDF2 → Argon2id) is no password change: the user's open IMAP, POP3,
submission and web sessions stay; a real password change afterwards still ends them
(mailcore/services/passwords.py). The admin's sessions behave the same way."""

import time

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.test import Client

from mailcore.models import PasswordEpoch
from mailcore.services import accounts, credentials
from tests.conftest import PASSWORD
from tests.signin.conftest import ATTACKER_IP, USER_IP
from tests.signin.test_revocation import WITHIN, Sessions

pytestmark = pytest.mark.django_db(transaction=True)
ADDRESS = "demo@example.test"
PBKDF2 = "django.contrib.auth.hashers.PBKDF2PasswordHasher"
ARGON2 = "argon2$argon2id$v=19$m=19456,t=2,p=1$"


@pytest.fixture
def before_argon2(settings):
    """PBKDF2 preferred, as before Argon2id was deployed; returns the switch to the project's
    hashers (the deployment)."""
    from webmail import settings as project

    settings.PASSWORD_HASHERS = [PBKDF2]

    def deploy():
        settings.PASSWORD_HASHERS = project.PASSWORD_HASHERS

    return deploy


def web_client(source: str) -> Client:
    return Client(REMOTE_ADDR=source)


def test_a_rehash_elsewhere_keeps_mail_and_web_sessions_and_a_new_password_ends_them(
    before_argon2, doors, mailbox
):
    user = mailbox.user
    user.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    user.save()
    sessions = Sessions(doors, PASSWORD)
    web = web_client(USER_IP)
    assert web.post("/login/", {"address": ADDRESS, "password": PASSWORD}).status_code == 302
    inbox = mailbox.folders.get(role="inbox")
    assert web.get(f"/f/{inbox.pk}/").status_code == 200
    user.refresh_from_db()
    assert user.password.startswith("pbkdf2_sha256$")  # nothing re-hashed yet
    try:
        before_argon2()
        # The user signs in on another machine: the right password is re-hashed.
        elsewhere = web_client(ATTACKER_IP)
        response = elsewhere.post("/login/", {"address": ADDRESS, "password": PASSWORD})
        assert response.status_code == 302
        user.refresh_from_db()
        assert user.password.startswith(ARGON2)
        assert PasswordEpoch.objects.filter(user=user).exists()
        time.sleep(5)  # two rounds of the listeners' revocation watcher
        assert sessions.alive() == {"imap": True, "pop3": True, "smtp": True}
        assert web.get(f"/f/{inbox.pk}/").status_code == 200
        assert elsewhere.get(f"/f/{inbox.pk}/").status_code == 200
        # A new login after the re-hash works at every door, and opens a session that a new
        # password ends as well.
        credentials.forget()
        assert doors.login("imap", USER_IP, ADDRESS, PASSWORD) == "ok"

        started = time.monotonic()
        accounts.set_password(mailbox, "a whole new passphrase")
        assert sessions.all_end_within(WITHIN) == {"imap": False, "pop3": False, "smtp": False}
        assert time.monotonic() - started < WITHIN
        for client in (web, elsewhere):
            response = client.get(f"/f/{inbox.pk}/")
            assert response.status_code == 302 and response["Location"].startswith("/login/")
    finally:
        sessions.close()


def test_a_password_changed_while_a_rehash_was_computed_is_kept(before_argon2, mailbox):
    from mailcore.services import passwords

    user = mailbox.user
    user.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    user.save()
    before_argon2()
    stale = get_user_model().objects.get(pk=user.pk)
    accounts.set_password(mailbox, "changed meanwhile")  # by the admin, say
    assert passwords.check_password(stale, PASSWORD)  # right for the hash it was given...
    user.refresh_from_db()
    assert user.check_password("changed meanwhile")  # ...but the new password stays
    assert not PasswordEpoch.objects.filter(user=user).exists()


def test_an_admin_session_survives_a_rehash_and_ends_with_a_new_password(before_argon2, db):
    staff = get_user_model().objects.create_superuser("boss", "boss@example.test", PASSWORD)
    staff.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    staff.save()
    first = web_client(USER_IP)
    response = first.post("/admin/login/?next=/admin/",
                          {"username": "boss", "password": PASSWORD, "next": "/admin/"})
    assert response.status_code == 302
    assert first.get("/admin/").status_code == 200
    before_argon2()
    second = web_client(ATTACKER_IP)
    response = second.post("/admin/login/?next=/admin/",
                           {"username": "boss", "password": PASSWORD, "next": "/admin/"})
    assert response.status_code == 302
    staff.refresh_from_db()
    assert staff.password.startswith(ARGON2)
    assert first.get("/admin/").status_code == 200
    staff.set_password("another passphrase")
    staff.save()
    assert first.get("/admin/").status_code == 302
    assert second.get("/admin/").status_code == 302
