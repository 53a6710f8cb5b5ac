"""A cache of verified credentials, so that a client logging in again and again (phones open a
connection per folder; sync tools log in every minute) does not pay Django's password hash each
time (PBKDF2 with 1,000,000 rounds costs about 0.3 s here).

Trade-off (documented in the README): after one successful check through
:func:`mailcore.services.accounts.authenticate`, this process remembers, for ``TTL`` seconds,
``HMAC-SHA256(SECRET_KEY, address NUL password)`` → (mailbox id, the stored password hash). The
password itself is never kept. A later login with the same pair costs one HMAC and two small
queries instead of a PBKDF2 run. The entry is used only while the account's stored hash is
unchanged (a password change or reset invalidates it at once) and the account, its user and its
domain are active; the shared failed-login throttle is still checked every time. What is lost: a
memory dump of the process during ``TTL`` allows a fast (HMAC-speed rather than PBKDF2-speed)
guess of recently used passwords if SECRET_KEY leaks too. Entries are bounded (``MAX_ENTRIES``).

The doors whose clients log in again and again use it (IMAP, POP3 and SMTP submission AUTH);
the web login, once per browser session, and the current-password check of a password
change use :func:`accounts.authenticate` directly."""

import hashlib
import hmac
import threading
import time
from collections import OrderedDict

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection

from mailcore.exceptions import AuthFailed, AuthThrottled
from mailcore.models import AuthFailure, Domain, Mailbox
from mailcore.services import accounts

TTL = 300.0
MAX_ENTRIES = 10_000

_FAILURES = AuthFailure._meta.db_table
_MAILBOXES = Mailbox._meta.db_table
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


def _check_throttle(address: str, remote_ip: str | None) -> None:
    """The shared throttle, read in one query; a stale failure count of the address is cleared
    on success, as :func:`accounts.authenticate` does."""
    keys = accounts._throttle_keys(address, remote_ip)
    window_start = connection.ops.adapt_datetimefield_value(accounts._window_start())
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT \"key\", CASE WHEN window_start >= %s AND \"count\" >= %s THEN 1 ELSE 0 END"
            f" FROM {_FAILURES} WHERE \"key\" IN ({', '.join(['%s'] * len(keys))})",
            [window_start, settings.CORREIO_AUTH_MAX_FAILURES, *keys],
        )
        rows = cursor.fetchall()
    if any(throttled for _key_name, throttled in rows):
        raise AuthThrottled()
    if any(key_name == keys[0] for key_name, _t in rows):
        accounts.clear_auth_failures(address)


def _mailbox_if_valid(mailbox_id: int, password_hash: str) -> Mailbox | None:
    """The mailbox, when it and its user and domain are active and the user's stored hash is
    still the one verified (one query: logins are on every IMAP and POP3 client's path)."""
    columns = ", ".join(f"m.{name}" for name in _MAILBOX_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns}, u.password, u.is_active, d.active FROM {_MAILBOXES} m"
            f" JOIN {_USERS} u ON u.id = m.user_id JOIN {_DOMAINS} d ON d.id = m.domain_id"
            " WHERE m.id = %s",
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


def authenticate_cached(address: str, password: str, remote_ip: str | None = None) -> Mailbox:
    """Like :func:`mailcore.services.accounts.authenticate` (same errors, same throttle), served
    from the cache of verified credentials when possible."""
    key = _key(address, password)
    entry = _cached(key)
    if entry is not None:
        mailbox_id, password_hash = entry
        _check_throttle(address, remote_ip)
        mailbox = _mailbox_if_valid(mailbox_id, password_hash)
        if mailbox is not None:
            return mailbox
        forget(key)
    mailbox = accounts.authenticate(address, password, remote_ip)
    _remember(key, mailbox)
    return mailbox


__all__ = ["AuthFailed", "authenticate_cached", "forget"]
