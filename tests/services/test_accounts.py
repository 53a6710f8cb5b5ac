"""Accounts: domains, mailboxes, alias expansion, credentials and the shared throttle."""

import pytest
from django.core.exceptions import ValidationError

from mailcore.exceptions import (
    AliasLoop,
    AuthFailed,
    AuthThrottled,
    DomainNotFound,
    MailboxInactive,
    RelayDenied,
    UnknownRecipient,
)
from mailcore.models import Alias, Folder, LoginThrottle
from mailcore.services import accounts, credentials
from tests.conftest import PASSWORD


def test_a_new_mailbox_gets_every_special_folder(mailbox):
    roles = dict(Folder.objects.filter(mailbox=mailbox).values_list("role", "name"))
    assert roles == {
        "inbox": "INBOX",
        "drafts": "Drafts",
        "sent": "Sent",
        "archive": "Archive",
        "junk": "Junk",
        "trash": "Trash",
    }
    assert mailbox.user.username == "demo@example.test"


def test_addresses_are_stored_lower_case(make_mailbox):
    mailbox = make_mailbox("Bob.Smith@Example.TEST")
    assert mailbox.address == "bob.smith@example.test"


def test_a_mailbox_needs_a_local_domain(db):
    with pytest.raises(DomainNotFound):
        accounts.create_mailbox("x@nowhere.test", "pw")


@pytest.mark.parametrize("address", ["not-an-address", "two@@example.test", "sp ace@example.test"])
def test_malformed_addresses_are_refused(domain, address):
    with pytest.raises(ValidationError):
        accounts.create_mailbox(address, "pw")


def test_duplicate_mailboxes_and_domains_are_refused(mailbox):
    with pytest.raises(ValidationError):
        accounts.create_mailbox("demo@example.test", "pw")
    with pytest.raises(ValidationError):
        accounts.create_domain("EXAMPLE.test")


@pytest.mark.parametrize("name", ["localhost", "-bad.test", "a..b", "bad_char!.test", ""])
def test_bad_domain_names_are_refused(db, name):
    with pytest.raises(ValidationError):
        accounts.create_domain(name)


def test_a_mailbox_resolves_to_itself(mailbox):
    assert accounts.resolve_recipient("<Demo@Example.test>").mailbox_ids == [mailbox.pk]


def test_plus_addressing_reaches_the_base_mailbox(mailbox):
    assert accounts.resolve_recipient("demo+lists@example.test").mailbox_ids == [mailbox.pk]


def test_unknown_users_and_foreign_domains_are_refused(mailbox):
    with pytest.raises(UnknownRecipient):
        accounts.resolve_recipient("nobody@example.test")
    with pytest.raises(RelayDenied):
        accounts.resolve_recipient("someone@elsewhere.test")


def test_inactive_mailbox_is_refused(mailbox):
    mailbox.active = False
    mailbox.save()
    with pytest.raises(MailboxInactive):
        accounts.resolve_recipient("demo@example.test")


def test_aliases_expand_to_local_and_remote_destinations(domain, make_mailbox):
    alice = make_mailbox("alice@example.test")
    bob = make_mailbox("bob@example.test")
    Alias.objects.create(
        domain=domain,
        local_part="team",
        destinations="alice@example.test, bob@example.test\nfriend@remote.test",
    )
    Alias.objects.create(domain=domain, local_part="all", destinations="team@example.test alice@example.test")
    result = accounts.resolve_recipient("all@example.test")
    assert result.mailbox_ids == [alice.pk, bob.pk]
    assert result.remote == ["friend@remote.test"]


def test_catch_all_takes_unknown_addresses_only(domain, make_mailbox):
    alice = make_mailbox("alice@example.test")
    bob = make_mailbox("bob@example.test")
    Alias.objects.create(domain=domain, local_part="", destinations="alice@example.test")
    assert accounts.resolve_recipient("whoever@example.test").mailbox_ids == [alice.pk]
    assert accounts.resolve_recipient("bob@example.test").mailbox_ids == [bob.pk]


def test_alias_cycles_terminate(domain, make_mailbox):
    alice = make_mailbox("alice@example.test")
    Alias.objects.create(domain=domain, local_part="a", destinations="b@example.test")
    Alias.objects.create(domain=domain, local_part="b", destinations="a@example.test alice@example.test")
    assert accounts.resolve_recipient("a@example.test").mailbox_ids == [alice.pk]


def test_overdeep_alias_chains_are_refused(domain, make_mailbox):
    make_mailbox("end@example.test")
    for i in range(accounts.MAX_ALIAS_DEPTH + 2):
        Alias.objects.create(domain=domain, local_part=f"hop{i}", destinations=f"hop{i + 1}@example.test")
    Alias.objects.create(
        domain=domain, local_part=f"hop{accounts.MAX_ALIAS_DEPTH + 2}", destinations="end@example.test"
    )
    with pytest.raises(AliasLoop):
        accounts.resolve_recipient("hop0@example.test")


def test_owned_addresses_include_private_aliases(domain, mailbox):
    Alias.objects.create(domain=domain, local_part="me", destinations="demo@example.test")
    Alias.objects.create(domain=domain, local_part="group", destinations="demo@example.test x@remote.test")
    assert accounts.owned_addresses(mailbox) == {"demo@example.test", "me@example.test"}


def test_authenticate_accepts_the_right_password(mailbox):
    assert credentials.authenticate("DEMO@example.test", PASSWORD, "192.0.2.1") == mailbox


@pytest.mark.parametrize(
    "address,password",
    [("demo@example.test", "wrong"), ("nobody@example.test", PASSWORD), ("", ""), ("demo@example.test", "")],
)
def test_authenticate_refuses_wrong_credentials(mailbox, address, password):
    with pytest.raises(AuthFailed):
        credentials.authenticate(address, password, "192.0.2.1")


def test_disabled_mailboxes_cannot_log_in(mailbox):
    mailbox.active = False
    mailbox.save()
    with pytest.raises(AuthFailed):
        credentials.authenticate("demo@example.test", PASSWORD)


def test_failed_logins_throttle_that_address_for_that_account_only(mailbox, settings):
    settings.CORREIO_AUTH_MAX_FAILURES = 3
    for _ in range(3):
        with pytest.raises(AuthFailed):
            credentials.authenticate("demo@example.test", "wrong", "192.0.2.1")
    with pytest.raises(AuthThrottled):
        credentials.authenticate("demo@example.test", PASSWORD, "192.0.2.1")
    # The owner at another address is not locked out by the guesser.
    assert credentials.authenticate("demo@example.test", PASSWORD, "198.51.100.7") == mailbox


def test_a_client_failing_for_many_accounts_is_blocked_for_all(make_mailbox, settings):
    settings.CORREIO_AUTH_SPRAY_LIMIT = 3
    make_mailbox("alice@example.test")
    for name in ("x", "y", "z"):
        with pytest.raises(AuthFailed):
            credentials.authenticate(f"{name}@example.test", "guess", "203.0.113.9")
    with pytest.raises(AuthThrottled):
        credentials.authenticate("alice@example.test", PASSWORD, "203.0.113.9")
    # Another client is not blocked for alice.
    assert credentials.authenticate("alice@example.test", PASSWORD, "203.0.113.10")


def test_the_throttle_window_expires(mailbox, settings):
    settings.CORREIO_AUTH_MAX_FAILURES = 2
    for _ in range(2):
        with pytest.raises(AuthFailed):
            credentials.authenticate("demo@example.test", "wrong", "192.0.2.1")
    with pytest.raises(AuthThrottled):
        credentials.authenticate("demo@example.test", PASSWORD, "192.0.2.1")
    LoginThrottle.objects.update(last_attempt="2000-01-01T00:00:00Z")
    assert credentials.authenticate("demo@example.test", PASSWORD, "192.0.2.1") == mailbox


def test_a_successful_login_clears_that_address_record(mailbox, settings):
    settings.CORREIO_AUTH_MAX_FAILURES = 3
    for _ in range(2):
        with pytest.raises(AuthFailed):
            credentials.authenticate("demo@example.test", "wrong")
    credentials.authenticate("demo@example.test", PASSWORD)
    assert not LoginThrottle.objects.filter(login="demo@example.test").exists()


def test_the_real_password_hasher_works(domain, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    mailbox = accounts.create_mailbox("slow@example.test", "s3cret-pass")
    assert mailbox.user.password.startswith("pbkdf2_sha256$")
    assert credentials.authenticate("slow@example.test", "s3cret-pass") == mailbox


def test_an_alias_cycle_that_reaches_no_mailbox_is_refused(domain):
    Alias.objects.create(domain=domain, local_part="ping", destinations="pong@example.test")
    Alias.objects.create(domain=domain, local_part="pong", destinations="ping@example.test")
    with pytest.raises(AliasLoop):
        accounts.resolve_recipient("ping@example.test")
