"""The failed-login throttle through the real doors (imaplib, poplib, smtplib, the webmail and
the admin over Django's test client) from two client addresses: a guesser at 127.0.0.2 never
locks out the user at 127.0.0.1, a sprayer gets its own address blocked, waits grow without
blocking anyone else, and concurrent guesses cannot run more password checks than the limit."""

import threading
import time

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import MD5PasswordHasher
from django.test import Client

from mailcore.exceptions import AuthFailed
from mailcore.models import LoginThrottle
from mailcore.services import accounts, credentials, throttle
from tests.conftest import PASSWORD
from tests.signin.conftest import ATTACKER_IP, DOORS, USER_IP

pytestmark = pytest.mark.django_db(transaction=True)
ADDRESS = "demo@example.test"


class CountingHasher(MD5PasswordHasher):
    """A real (fast) hasher counting the password checks it runs, from any thread."""

    algorithm = "counting_md5"
    verified = 0
    lock = threading.Lock()

    def verify(self, password, encoded):
        with CountingHasher.lock:
            CountingHasher.verified += 1
        return super().verify(password, encoded)


@pytest.mark.parametrize("door", DOORS)
def test_a_guesser_at_another_address_cannot_lock_the_user_out(doors, mailbox, settings, door):
    settings.CORREIO_AUTH_MAX_FAILURES = 4
    answers = [doors.login(door, ATTACKER_IP, ADDRESS, f"guess {n}") for n in range(6)]
    assert answers == ["failed"] * 4 + ["throttled"] * 2
    # Even the right password is refused from the guesser's address...
    assert doors.login(door, ATTACKER_IP, ADDRESS, PASSWORD) == "throttled"
    # ...while the owner, elsewhere, signs in at once through every door.
    for each in DOORS:
        assert doors.login(each, USER_IP, ADDRESS, PASSWORD) == "ok"


def test_the_owner_behind_the_same_nat_is_slowed_not_refused_by_the_soft_limit(
    doors, mailbox, settings
):
    """Guessers at many addresses push the account over its soft limit: the right password
    from an address with a clean record still works, after the soft delay."""
    settings.CORREIO_AUTH_ACCOUNT_SOFT_LIMIT = 3
    settings.CORREIO_AUTH_SOFT_DELAY_MS = 700
    for source in ("127.0.0.3", "127.0.0.4", "127.0.0.5"):
        assert doors.login("imap", source, ADDRESS, "guess") == "failed"
    started = time.monotonic()
    assert doors.login("imap", USER_IP, ADDRESS, PASSWORD) == "ok"
    assert time.monotonic() - started >= 0.65


@pytest.mark.parametrize("door", DOORS)
def test_spraying_many_accounts_from_one_address_blocks_that_address(
    doors, make_mailbox, settings, door
):
    settings.CORREIO_AUTH_SPRAY_LIMIT = 4
    make_mailbox(ADDRESS)
    for n in range(4):
        make_mailbox(f"user{n}@example.test")
        assert doors.login(door, ATTACKER_IP, f"user{n}@example.test", "Summer2026!") == "failed"
    # Blocked for every account, the right password included, at every door...
    for each in DOORS:
        assert doors.login(each, ATTACKER_IP, ADDRESS, PASSWORD) == "throttled"
    # ...and only that address.
    assert doors.login(door, USER_IP, ADDRESS, PASSWORD) == "ok"
    assert doors.login(door, USER_IP, "user0@example.test", PASSWORD) == "ok"


def test_waits_grow_per_pair_and_never_block_the_listener(doors, mailbox, settings):
    settings.CORREIO_AUTH_DELAY_MS = 1500
    settings.CORREIO_AUTH_MAX_DELAY_MS = 10000
    assert doors.login("imap", ATTACKER_IP, ADDRESS, "one") == "failed"
    started = time.monotonic()
    assert doors.login("imap", ATTACKER_IP, ADDRESS, "two") == "failed"  # waits 1.5 s
    assert time.monotonic() - started >= 1.4
    result = {}

    def third():
        begun = time.monotonic()
        result["answer"] = doors.login("imap", ATTACKER_IP, ADDRESS, "three")  # waits 3 s
        result["done"] = time.monotonic()
        result["took"] = result["done"] - begun

    guesser = threading.Thread(target=third)
    guesser.start()
    time.sleep(0.3)
    # The same listener serves the owner while the guesser waits on its event loop.
    assert doors.login("imap", USER_IP, ADDRESS, PASSWORD) == "ok"
    owner_done = time.monotonic()
    guesser.join(30)
    assert result["answer"] == "failed" and result["took"] >= 2.9
    assert owner_done < result["done"] - 1


def test_forty_concurrent_wrong_logins_run_at_most_the_limit_of_checks(
    doors, mailbox, settings
):
    settings.PASSWORD_HASHERS = ["tests.signin.test_throttle_doors.CountingHasher"]
    settings.CORREIO_AUTH_MAX_FAILURES = 10
    settings.CORREIO_AUTH_DELAY_MS = 0
    accounts.set_password(mailbox, PASSWORD)
    CountingHasher.verified = 0
    answers = []

    def guess(n):
        answers.append(doors.login(["imap", "pop3", "smtp"][n % 3], ATTACKER_IP, ADDRESS,
                                   f"guess {n}"))

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(set(answers)) == ["failed", "throttled"]
    assert answers.count("failed") == 10
    assert CountingHasher.verified == 10
    assert LoginThrottle.objects.get(login=ADDRESS, client=ATTACKER_IP).attempts == 10


def test_the_webmail_login_throttles_per_address_and_believes_only_trusted_proxies(
    mailbox, settings
):
    settings.CORREIO_AUTH_MAX_FAILURES = 2
    attacker = Client(REMOTE_ADDR=ATTACKER_IP)
    for _ in range(2):
        response = attacker.post("/login/", {"address": ADDRESS, "password": "nope"},
                                 HTTP_X_FORWARDED_FOR="10.9.9.9")
        assert response.status_code == 403
    response = attacker.post("/login/", {"address": ADDRESS, "password": PASSWORD})
    assert b"Too many failed attempts" in response.content
    # X-Forwarded-For was ignored: the record is the real peer's.
    assert LoginThrottle.objects.filter(login=ADDRESS, client=ATTACKER_IP).exists()
    assert not LoginThrottle.objects.filter(client="10.9.9.9").exists()
    user = Client(REMOTE_ADDR=USER_IP)
    assert user.post("/login/", {"address": ADDRESS, "password": PASSWORD}).status_code == 302

    # Behind a trusted reverse proxy, the client is the last address the proxy added.
    settings.CORREIO_TRUSTED_PROXIES = ["127.0.0.0/24"]
    proxied = Client(REMOTE_ADDR="127.0.0.9")
    for _ in range(2):
        proxied.post("/login/", {"address": ADDRESS, "password": "nope"},
                     HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.5")
    assert LoginThrottle.objects.get(login=ADDRESS, client="203.0.113.5").attempts == 2
    response = proxied.post("/login/", {"address": ADDRESS, "password": PASSWORD},
                            HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert b"Too many failed attempts" in response.content
    response = proxied.post("/login/", {"address": ADDRESS, "password": PASSWORD},
                            HTTP_X_FORWARDED_FOR="198.51.100.20")
    assert response.status_code == 302


def test_the_web_waits_a_bounded_time_then_answers_with_a_form_error(mailbox, settings):
    settings.CORREIO_AUTH_DELAY_MS = 5000
    settings.CORREIO_AUTH_MAX_DELAY_MS = 60000
    settings.CORREIO_AUTH_WEB_MAX_WAIT_MS = 300
    attacker = Client(REMOTE_ADDR=ATTACKER_IP)
    attacker.post("/login/", {"address": ADDRESS, "password": "nope"})
    started = time.monotonic()
    response = attacker.post("/login/", {"address": ADDRESS, "password": "nope2"})
    assert time.monotonic() - started < 1
    assert response.status_code == 403
    assert b"wait a few seconds" in response.content
    # The refused attempt was not counted.
    assert LoginThrottle.objects.get(login=ADDRESS, client=ATTACKER_IP).attempts == 1


def test_the_admin_login_goes_through_the_same_throttle(db, settings):
    settings.CORREIO_AUTH_MAX_FAILURES = 3
    get_user_model().objects.create_superuser("boss", "boss@example.test", PASSWORD)
    attacker = Client(REMOTE_ADDR=ATTACKER_IP)
    for _ in range(3):
        response = attacker.post("/admin/login/", {"username": "boss", "password": "x"})
        assert response.status_code == 200 and b"errornote" in response.content
    record = LoginThrottle.objects.get(login="boss", client=ATTACKER_IP)
    assert (record.attempts, record.failed) == (3, True)
    response = attacker.post("/admin/login/", {"username": "boss", "password": PASSWORD})
    assert b"errornote" in response.content  # refused even with the right password
    owner = Client(REMOTE_ADDR=USER_IP)
    response = owner.post("/admin/login/", {"username": "boss", "password": PASSWORD})
    assert response.status_code == 302
    assert not LoginThrottle.objects.filter(login="boss", client=USER_IP).exists()


def test_old_records_are_purged_but_a_running_block_is_kept(mailbox, settings):
    settings.CORREIO_AUTH_SPRAY_LIMIT = 2
    for name in ("a", "b"):
        with pytest.raises(AuthFailed):
            credentials.authenticate(f"{name}@example.test", "x", ATTACKER_IP)
    with pytest.raises(AuthFailed):
        credentials.authenticate("c@example.test", "x", "192.0.2.1")
    LoginThrottle.objects.update(last_attempt="2000-01-01T00:00:00Z")
    from mailcore.tasks import purge_login_records

    assert purge_login_records() == 4  # three pairs and 192.0.2.1's own row
    assert list(LoginThrottle.objects.values_list("login", "client")) == [("", ATTACKER_IP)]
    assert throttle.pair_delay(0) == 0
