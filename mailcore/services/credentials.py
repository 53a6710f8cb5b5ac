"""The one credential check every door uses (IMAP, POP3, SMTP submission AUTH, the webmail),
in two halves around the failed-login throttle's wait (mailcore/services/throttle.py):
:func:`begin_login` reserves an attempt, the door waits the delay its own way (the listeners on
their event loop, the web a bounded sleep), and :func:`finish_login` runs the password hash and
reports the result to the throttle. :func:`authenticate` does the three for synchronous callers.

It also keeps a cache of verified credentials, so that a client logging in again and again
(phones open a connection per folder; sync tools log in every minute) does not pay the password
hash each time. Trade-off (documented in the README): after one successful check, this process
remembers, for ``TTL`` seconds, ``HMAC-SHA256(SECRET_KEY, address NUL password)`` → (mailbox id,
the stored password hash). The password itself is never kept. A later login with the same pair
costs one HMAC and two small queries instead of a hash. The entry is used only while the
account's stored hash is unchanged (a password change or reset invalidates it at once) and the
account, its user and its domain are active; the throttle's refusals still apply every time. What
is lost: a memory dump of the process during ``TTL`` allows a fast (HMAC-speed) guess of recently
used passwords if SECRET_KEY leaks too. Entries are bounded (``MAX_ENTRIES``)."""

import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password, make_password
from django.db import connection

from mailcore.exceptions import AuthFailed
from mailcore.models import AppPassword, Domain, Mailbox, PasswordEpoch, TwoFactor
from mailcore.services import accounts, apppasswords, passwords, throttle, twofactor

TTL = 300.0
MAX_ENTRIES = 10_000

_MAILBOXES = Mailbox._meta.db_table
_TWO_FACTOR = TwoFactor._meta.db_table
_EPOCHS = PasswordEpoch._meta.db_table
_DOMAINS = Domain._meta.db_table
_USERS = get_user_model()._meta.db_table
_MAILBOX_FIELDS = [f.attname for f in Mailbox._meta.concrete_fields]
_lock = threading.Lock()
_cache: "OrderedDict[bytes, tuple[int, str, float]]" = OrderedDict()


def _key(address: str, password: str) -> bytes:
    message = accounts.normalize_address(address).encode() + b"\0" + password.encode(
        "utf-8", "surrogateescape"
    )
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).digest()


def _cached(key: bytes) -> tuple[int, str] | None:
    with _lock:
        entry = _cache.get(key)
        if entry is None:
            return None
        if entry[2] < time.monotonic():
            del _cache[key]
            return None
        return entry[0], entry[1]


def _remember(key: bytes, mailbox: Mailbox) -> None:
    with _lock:
        _cache[key] = (mailbox.pk, mailbox.user.password, time.monotonic() + TTL)
        _cache.move_to_end(key)
        while len(_cache) > MAX_ENTRIES:
            _cache.popitem(last=False)


def forget(key: bytes | None = None) -> None:
    """Drop one entry, or every entry (tests, password resets in this process)."""
    with _lock:
        if key is None:
            _cache.clear()
        else:
            _cache.pop(key, None)


def _mailbox_if_valid(mailbox_id: int, password_hash: str) -> Mailbox | None:
    """The mailbox, when it and its user and domain are active, two-factor is off, and the
    user's stored hash is still the one verified (one query: logins are on every IMAP and POP3
    client's path)."""
    columns = ", ".join(f"m.{name}" for name in _MAILBOX_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns}, u.password, u.is_active, d.active FROM {_MAILBOXES} m"
            f" JOIN {_USERS} u ON u.id = m.user_id JOIN {_DOMAINS} d ON d.id = m.domain_id"
            # With two-factor on, the account password no longer opens the mail doors.
            f" WHERE m.id = %s AND NOT EXISTS (SELECT 1 FROM {_TWO_FACTOR} t"
            " WHERE t.user_id = u.id AND t.confirmed_at IS NOT NULL)",
            [mailbox_id],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    *values, stored_hash, user_active, domain_active = row
    mailbox = Mailbox.from_db(connection.alias, _MAILBOX_FIELDS, values)
    if stored_hash == password_hash and mailbox.active and user_active and domain_active:
        return mailbox
    return None


# The doors, as the credential check tells them apart: the mail doors (IMAP, POP3, SMTP
# submission) accept app passwords, and the account password unless two-factor sign-in is on;
# the web accepts only the account password (its second factor is asked for afterwards).
MAIL = "mail"
WEB = "web"


@dataclass(frozen=True)
class Verified:
    mailbox: Mailbox
    app_password: int | None  # the AppPassword id used, if one was


def _verify(address: str, password: str, client: str | None, door: str) -> Verified:
    """The password check itself, no throttle: ``AuthFailed`` for an unknown address, a wrong
    password, or a disabled account, user or domain."""
    mailbox = (
        # The password epoch too: the web signs the user in with it (webmail/auth_backend.py).
        Mailbox.objects.select_related("user__password_epoch", "domain")
        .filter(address=accounts.normalize_address(address))
        .first()
    )
    if mailbox is None:
        # Spend the same time as a real check, so timing does not reveal which users exist.
        make_password(password)
        raise AuthFailed()
    if not (mailbox.active and mailbox.domain.active and mailbox.user.is_active):
        check_password(password, mailbox.user.password)  # the same time as an active account
        raise AuthFailed()
    if door == MAIL:
        app_password = apppasswords.match_app_password(mailbox, password, client)
        if app_password is not None:
            return Verified(mailbox, app_password.pk)
        if twofactor.is_enabled(mailbox):
            make_password(password)  # the same time as a password check
            raise AuthFailed()
    # A password stored with an older hasher or parameters (PBKDF2 before Argon2id) is re-hashed
    # once it is known to be right, without ending the user's other sessions.
    if not passwords.check_password(mailbox.user, password):
        raise AuthFailed()
    return Verified(mailbox, None)


@dataclass(frozen=True)
class LoginStep:
    """The first half of a login: either the mailbox already (remembered credentials), or a
    throttle reservation the door must wait out before :func:`finish_login`."""

    mailbox: Mailbox | None
    reservation: throttle.Reservation | None
    key: bytes
    door: str = MAIL

    @property
    def wait(self) -> float:
        return self.reservation.wait if self.reservation is not None else 0.0


def begin_login(
    address: str,
    password: str,
    client: str | None,
    *,
    max_wait: float | None = None,
    door: str = MAIL,
) -> LoginStep:
    """Start a login at ``door`` (``MAIL`` or ``WEB``): remembered credentials finish at once
    (still subject to the throttle's refusals), others get a throttle reservation
    (``AuthThrottled`` / ``AuthDelayed``). The web, one login per browser session, neither uses
    nor fills the cache."""
    key = _key(address, password) if door == MAIL else b""
    entry = _cached(key) if key else None
    if entry is not None:
        mailbox = _mailbox_if_valid(*entry)
        if mailbox is not None:
            throttle.check_remembered(address, client)
            return LoginStep(mailbox, None, key, door)
        forget(key)
    return LoginStep(None, throttle.reserve(address, client, max_wait=max_wait), key, door)


def finish_login(step: LoginStep, address: str, password: str) -> Mailbox:
    """Check the password of a reserved attempt and report it to the throttle."""
    return finish_login_verified(step, address, password).mailbox


def finish_login_verified(step: LoginStep, address: str, password: str) -> Verified:
    """:func:`finish_login`, saying also which app password (if any) signed in."""
    if step.mailbox is not None:
        return Verified(step.mailbox, None)
    try:
        verified = _verify(address, password, step.reservation.client, step.door)
    except AuthFailed:
        throttle.failed(step.reservation)
        raise
    throttle.succeeded(step.reservation)
    # App passwords cost a SHA-256 and are revocable one by one: never cached.
    if step.key and verified.app_password is None:
        _remember(step.key, verified.mailbox)
    return verified


def refuse_login(address: str, client: str | None) -> None:
    """A login that cannot be right (credentials that are not UTF-8): counted as a failure
    like any other, then ``AuthFailed`` (or ``AuthThrottled`` when the throttle refuses first)."""
    throttle.failed(throttle.reserve(address, client))
    raise AuthFailed()


def is_undecodable(text: str) -> bool:
    """True for text carrying undecodable bytes (``surrogateescape``) from a door."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def authenticate(
    address: str,
    password: str,
    client: str | None = None,
    *,
    max_wait: float | None = None,
    door: str = MAIL,
) -> Mailbox:
    """The whole credential check for synchronous callers (the web, commands): waits the
    throttle's delay in this thread, refusing with ``AuthDelayed`` beyond ``max_wait`` seconds
    (default ``CORREIO_AUTH_WEB_MAX_WAIT_MS``). The listeners use
    ``mailcore.protocols.common.auth.authenticate``, which waits without blocking their loop."""
    if max_wait is None:
        max_wait = settings.CORREIO_AUTH_WEB_MAX_WAIT_MS / 1000
    if is_undecodable(address) or is_undecodable(password):
        refuse_login(address, client)
    step = begin_login(address, password, client, max_wait=max_wait, door=door)
    if step.wait:
        time.sleep(step.wait)
    return finish_login(step, address, password)


# --- Revocation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountState:
    """What a signed-in session depends on. A session ends when the account, its user or its
    domain is disabled, the password changes (its epoch: a re-hash of the same password is no
    change, mailcore/services/passwords.py), two-factor is turned on (for sessions opened with
    the account password, which no longer opens the mail doors) or the app password it signed
    in with is revoked."""

    usable: bool
    password_epoch: str
    two_factor: bool
    app_passwords: frozenset[int]


def account_states(mailbox_ids: list[int]) -> dict[int, AccountState]:
    """The state of each account, in two queries per 500 accounts (the listeners' revocation
    watcher asks for every signed-in account of the process every few seconds)."""
    states: dict[int, AccountState] = {}
    for start in range(0, len(mailbox_ids), 500):
        chunk = list(mailbox_ids[start : start + 500])
        marks = ", ".join(["%s"] * len(chunk))
        apps: dict[int, set[int]] = {}
        for app_id, mailbox_id in AppPassword.objects.filter(mailbox_id__in=chunk).values_list(
            "id", "mailbox_id"
        ):
            apps.setdefault(mailbox_id, set()).add(app_id)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT m.id, m.active, u.is_active, d.active, u.password, e.epoch, e.current,"
                f" EXISTS (SELECT 1 FROM {_TWO_FACTOR} t WHERE t.user_id = u.id"
                "  AND t.confirmed_at IS NOT NULL)"
                f" FROM {_MAILBOXES} m JOIN {_USERS} u ON u.id = m.user_id"
                f" JOIN {_DOMAINS} d ON d.id = m.domain_id"
                f" LEFT JOIN {_EPOCHS} e ON e.user_id = u.id WHERE m.id IN ({marks})",
                chunk,
            )
            for (mailbox_id, active, user_active, domain_active, password, epoch, current,
                 two) in cursor:
                states[mailbox_id] = AccountState(
                    bool(active and user_active and domain_active),
                    passwords.epoch_of(password, epoch, current), bool(two),
                    frozenset(apps.get(mailbox_id, ())),
                )
    return states


def is_revoked(
    at_login: AccountState | None, now: AccountState | None, app_password: int | None = None
) -> bool:
    """True when a session opened in state ``at_login`` (with ``app_password``, or the account
    password when None) must end in state ``now`` (None: the account is gone)."""
    if at_login is None or now is None or not now.usable:
        return True
    if now.password_epoch != at_login.password_epoch:
        return True
    if app_password is None:
        return now.two_factor and not at_login.two_factor
    return app_password not in now.app_passwords


__all__ = [
    "AccountState",
    "AuthFailed",
    "LoginStep",
    "Verified",
    "MAIL",
    "WEB",
    "account_states",
    "is_revoked",
    "authenticate",
    "begin_login",
    "finish_login",
    "finish_login_verified",
    "forget",
    "is_undecodable",
    "refuse_login",
]
