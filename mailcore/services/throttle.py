"""The failed-login throttle every door shares (IMAP, POP3, SMTP submission AUTH, the webmail and
the Django admin): it slows guessing down without letting a stranger lock anyone out.

Three records, all in the ``LoginThrottle`` table because the doors run in different processes:

- **Per (login, client address)**, the pair: every attempt counts *before* the password hash runs
  (a reservation), and a success clears the pair. The n-th attempt of a pair must wait
  ``CORREIO_AUTH_DELAY_MS * 2**(n-1)`` (at most ``CORREIO_AUTH_MAX_DELAY_MS``) after the previous
  one, as Dovecot's auth penalty does; after ``CORREIO_AUTH_MAX_FAILURES`` attempts in
  ``CORREIO_AUTH_FAILURE_WINDOW`` seconds that pair is refused until the window has passed since
  its last attempt. Only that login from that address: the user at another address is untouched.
- **Per login**, a soft limit: once ``CORREIO_AUTH_ACCOUNT_SOFT_LIMIT`` attempts failed for one
  login across all addresses in the window, every attempt on it waits at least
  ``CORREIO_AUTH_SOFT_DELAY_MS``; the right password from an address with a clean record is still
  accepted, only slower.
- **Per client address**: an address that failed for ``CORREIO_AUTH_SPRAY_LIMIT`` different logins
  in the window (password spraying) is blocked outright, for every login, for
  ``CORREIO_AUTH_SPRAY_BLOCK`` seconds. While that many logins of the address have attempts in
  flight or failed, further logins of other accounts from it are refused, so concurrency cannot
  run more password checks than the limit either.

Reservations are atomic: one transaction locks the client address's own row (``login = ""``,
``select_for_update``; SQLite's IMMEDIATE transactions serialise writers anyway) and then reads and
bumps the pair, so 40 concurrent wrong logins run at most ``CORREIO_AUTH_MAX_FAILURES`` password
checks. Its commits do not wait for the disk (``mailcore.db.relaxed``: a power failure may give
a guesser one more attempt, and saves an ``fsync`` on every login). The throttle never sleeps: :func:`reserve` says how long the door must wait, and each door
waits its own way (the listeners with ``asyncio.sleep``, the web a bounded ``time.sleep`` or a form
error)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from mailcore.db.relaxed import relaxed_atomic
from mailcore.exceptions import AuthDelayed, AuthThrottled
from mailcore.models import LoginThrottle

# A login may be any text a client sends; the column holds 320 characters (RFC 5321 §4.5.3.1:
# 64 + 1 + 255), and the empty login is the client address's own row.
MAX_LOGIN = 320
_TABLE = LoginThrottle._meta.db_table
EMPTY_LOGIN = " "


@dataclass(frozen=True)
class Reservation:
    """One counted attempt: the door waits ``wait`` seconds, checks the password, then reports
    :func:`failed` or :func:`succeeded`."""

    login: str
    client: str
    wait: float


def normalize_login(login: str) -> str:
    text = login.strip().strip("<>").strip().lower()
    # Surrogates (undecodable bytes a door let through) cannot be stored: make them visible.
    text = text.encode("utf-8", "replace").decode("utf-8")[:MAX_LOGIN]
    return text or EMPTY_LOGIN


def _client(client: str | None) -> str:
    return (client or "")[:64]


def _window_start(now: datetime) -> datetime:
    return now - timedelta(seconds=settings.CORREIO_AUTH_FAILURE_WINDOW)


def pair_delay(attempts: int) -> float:
    """Seconds between the pair's previous attempt and the next one after ``attempts``."""
    if attempts <= 0:
        return 0.0
    delay_ms = settings.CORREIO_AUTH_DELAY_MS * 2 ** min(attempts - 1, 30)
    return min(delay_ms, settings.CORREIO_AUTH_MAX_DELAY_MS) / 1000


def _locked_client_row(client: str, now: datetime) -> LoginThrottle:
    row = LoginThrottle.objects.select_for_update().filter(login="", client=client).first()
    if row is not None:
        return row
    try:
        with transaction.atomic():
            return LoginThrottle.objects.create(login="", client=client, last_attempt=now)
    except IntegrityError:
        return LoginThrottle.objects.select_for_update().get(login="", client=client)


def _recent_counts(login: str, client: str, start: datetime) -> tuple[int, int]:
    """In one query: how many other logins this client has a record for in the window
    (spraying), and how many attempts on this login failed in the window from every address (its
    soft limit). Written in SQL because every login runs it: the ORM spent 2 ms of CPU building
    the same statement."""
    since = connection.ops.adapt_datetimefield_value(start)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(SUM(CASE WHEN client = %s AND login <> '' AND login <> %s"
            "  THEN 1 ELSE 0 END), 0),"
            " COALESCE(SUM(CASE WHEN login = %s AND failed THEN attempts ELSE 0 END), 0)"
            f" FROM {_TABLE} WHERE last_attempt >= %s AND (client = %s OR login = %s)",
            [client, login, login, since, client, login],
        )
        others, failed_here = cursor.fetchone()
    return int(others), int(failed_here)


def reserve(
    login: str,
    client: str | None,
    *,
    max_wait: float | None = None,
    account_limit: int | None = None,
) -> Reservation:
    """Count one attempt of ``login`` from ``client`` before its password is checked.

    Raises ``AuthThrottled`` when the pair has used its attempts, the client address is blocked
    for spraying, or (with ``account_limit``) that many attempts on the login failed in the
    window from all addresses together; ``AuthDelayed`` (counting nothing) when the door would
    have to wait longer than ``max_wait`` seconds."""
    login, client = normalize_login(login), _client(client)
    with relaxed_atomic():
        now = timezone.now()
        start = _window_start(now)
        client_row = _locked_client_row(client, now)
        if client_row.blocked_until is not None and client_row.blocked_until > now:
            raise AuthThrottled()
        pair = LoginThrottle.objects.select_for_update().filter(login=login, client=client).first()
        current = pair is not None and pair.last_attempt >= start
        attempts = pair.attempts if current else 0
        if attempts >= settings.CORREIO_AUTH_MAX_FAILURES:
            raise AuthThrottled()
        others, failed_here = _recent_counts(login, client, start)
        if attempts == 0 and others >= settings.CORREIO_AUTH_SPRAY_LIMIT:
            raise AuthThrottled()
        if account_limit is not None and failed_here >= account_limit:
            raise AuthThrottled()
        wait = 0.0
        if current and attempts:
            elapsed = (now - pair.last_attempt).total_seconds()
            wait = max(0.0, pair_delay(attempts) - elapsed)
        if failed_here >= settings.CORREIO_AUTH_ACCOUNT_SOFT_LIMIT:
            wait = max(wait, settings.CORREIO_AUTH_SOFT_DELAY_MS / 1000)
        if max_wait is not None and wait > max_wait:
            raise AuthDelayed(wait)
        # The attempt runs after its wait: the next one's delay counts from then, so concurrent
        # attempts of a pair queue one behind the other.
        runs_at = now + timedelta(seconds=wait)
        if pair is None:
            LoginThrottle.objects.create(
                login=login, client=client, attempts=1, last_attempt=runs_at
            )
        else:
            pair.attempts = attempts + 1
            pair.failed = pair.failed and current
            pair.last_attempt = runs_at
            pair.save(update_fields=["attempts", "failed", "last_attempt"])
    return Reservation(login, client, wait)


def failed(reservation: Reservation) -> None:
    """The reserved attempt was wrong: it now counts for the login's soft limit and the client's
    spraying record, and the client is blocked once it failed for enough logins."""
    now = timezone.now()
    with relaxed_atomic():
        LoginThrottle.objects.filter(login=reservation.login, client=reservation.client).update(
            failed=True
        )
        failing = LoginThrottle.objects.filter(
            client=reservation.client, failed=True, last_attempt__gte=_window_start(now)
        ).count()
        if failing >= settings.CORREIO_AUTH_SPRAY_LIMIT:
            block = now + timedelta(seconds=settings.CORREIO_AUTH_SPRAY_BLOCK)
            LoginThrottle.objects.filter(login="", client=reservation.client).update(
                blocked_until=block
            )


def succeeded(reservation: Reservation) -> None:
    """The reserved attempt was right: the pair's record is cleared (the login's record at other
    addresses, and the client's at other logins, stay)."""
    with relaxed_atomic():
        LoginThrottle.objects.filter(login=reservation.login, client=reservation.client).delete()


def check_remembered(login: str, client: str | None) -> None:
    """For a password already known to be right (the credential cache): refuse as
    :func:`reserve` would for a blocked client or a pair out of attempts, else clear the pair.
    Read-only in the usual case of no record."""
    login, client = normalize_login(login), _client(client)
    now = timezone.now()
    rows = list(
        LoginThrottle.objects.filter(login__in=["", login], client=client).values_list(
            "login", "attempts", "last_attempt", "blocked_until"
        )
    )
    pair_found = False
    for row_login, attempts, last_attempt, blocked_until in rows:
        if row_login == "":
            if blocked_until is not None and blocked_until > now:
                raise AuthThrottled()
            continue
        pair_found = True
        if (
            last_attempt >= _window_start(now)
            and attempts >= settings.CORREIO_AUTH_MAX_FAILURES
        ):
            raise AuthThrottled()
    if pair_found:
        with relaxed_atomic():
            LoginThrottle.objects.filter(login=login, client=client).delete()


def purge_login_records(now: datetime | None = None) -> int:
    """Delete records older than the window whose block (if any) has ended; returns how many.
    Run by Celery beat (``mailcore.tasks.purge_login_records``)."""
    now = now or timezone.now()
    stale = LoginThrottle.objects.filter(last_attempt__lt=_window_start(now)).exclude(
        blocked_until__gt=now
    )
    deleted, _ = stale.delete()
    return deleted


__all__ = [
    "Reservation",
    "check_remembered",
    "failed",
    "pair_delay",
    "purge_login_records",
    "reserve",
    "succeeded",
]
