"""Two-factor sign-in for the webmail and the admin: time-based one-time passwords (RFC 6238:
HMAC-SHA1, 30-second steps, 6 digits, as every authenticator app does; pyotp computes them) and
ten single-use recovery codes.

With two-factor on, the account password opens only the web and admin (followed by a code); the
mail doors (IMAP, POP3, SMTP) accept app passwords only (mailcore/services/credentials.py). Each
code is good once: the last accepted time step is kept and moved forward with a conditional
UPDATE, so a code seen over a shoulder, or sent twice at once, opens one session (RFC 6238 §5.2).
Code guesses go through the sign-in throttle under the login ``<user>#2fa``, with a hard limit
per account besides the per-address ones: a code has a million values (three are good at any
time, with the allowed drift), so a guesser who has the password and many addresses would
otherwise find one within hours, only slowed by the soft limit. After
``CORREIO_AUTH_CODE_LIMIT`` failed codes in the window from all addresses together, no code is
checked for that account until the window has passed; only someone who knows the password can
get there, and the README tells the user to change it."""

import hashlib
import hmac
import secrets
import time

import pyotp
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from mailcore.exceptions import AuthFailed
from mailcore.models import Mailbox, TwoFactor
from mailcore.services import throttle

ISSUER = "Correio"
STEP = 30
RECOVERY_CODES = 10
# RFC 6238 §5.2: allow one step of clock drift either way.
DRIFT_STEPS = 1


def _digest(code: str) -> str:
    return hashlib.sha256(b"correio recovery code\0" + code.encode()).hexdigest()


def _normalize_recovery(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()[:32]


def is_enabled_for_user(user_id: int) -> bool:
    return TwoFactor.objects.filter(user_id=user_id, confirmed_at__isnull=False).exists()


def is_enabled(mailbox: Mailbox) -> bool:
    return is_enabled_for_user(mailbox.user_id)


def begin_enrolment(user) -> tuple[str, str]:
    """A new secret for ``user`` (replacing one not yet confirmed): returns the secret and the
    ``otpauth://`` URI an authenticator app reads. Two-factor stays off until
    :func:`confirm_enrolment`. Raises ``ValueError`` when it is already on."""
    secret = pyotp.random_base32(length=32)
    with transaction.atomic():
        row = TwoFactor.objects.select_for_update().filter(user=user).first()
        if row is not None and row.confirmed_at is not None:
            raise ValueError("two-factor sign-in is already on")
        TwoFactor.objects.update_or_create(
            user=user, defaults={"secret": secret, "last_step": 0, "recovery_digests": []}
        )
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.get_username(), issuer_name=ISSUER)
    return secret, uri


def pending_secret(user) -> str | None:
    row = TwoFactor.objects.filter(user=user, confirmed_at__isnull=True).first()
    return row.secret if row else None


def _accept_totp(row: TwoFactor, code: str, now: float) -> bool:
    """True when ``code`` is the code of a step around ``now`` not used before; that step is
    then recorded, atomically."""
    digits = "".join(code.split())
    if len(digits) != 6 or not digits.isdigit():
        return False
    totp = pyotp.TOTP(row.secret)
    current = int(now // STEP)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.at(step * STEP), digits):
            return bool(
                TwoFactor.objects.filter(pk=row.pk, last_step__lt=step).update(last_step=step)
            )
    return False


def _new_recovery_codes(row: TwoFactor) -> list[str]:
    codes = [secrets.token_hex(5) for _ in range(RECOVERY_CODES)]
    row.recovery_digests = [_digest(code) for code in codes]
    return [f"{code[:5]}-{code[5:]}" for code in codes]


def confirm_enrolment(user, code: str) -> list[str]:
    """Turn two-factor on once the user proves their app has the secret; returns the recovery
    codes, shown once. Raises ``AuthFailed`` for a wrong code."""
    with transaction.atomic():
        row = TwoFactor.objects.select_for_update().filter(
            user=user, confirmed_at__isnull=True
        ).first()
        if row is None or not _accept_totp(row, code, time.time()):
            raise AuthFailed("wrong code")
        row.refresh_from_db(fields=["last_step"])
        codes = _new_recovery_codes(row)
        row.confirmed_at = timezone.now()
        row.save(update_fields=["recovery_digests", "confirmed_at"])
    return codes


def _use_recovery_code(row: TwoFactor, code: str) -> bool:
    digest = _digest(_normalize_recovery(code))
    with transaction.atomic():
        locked = TwoFactor.objects.select_for_update().get(pk=row.pk)
        if digest not in locked.recovery_digests:
            return False
        locked.recovery_digests = [d for d in locked.recovery_digests if d != digest]
        locked.save(update_fields=["recovery_digests"])
    return True


def recovery_codes_left(user) -> int:
    row = TwoFactor.objects.filter(user=user, confirmed_at__isnull=False).first()
    return len(row.recovery_digests) if row else 0


def check_second_factor(user, code: str, client: str | None) -> None:
    """Check a code (TOTP or a recovery code) for a user whose password was right, through the
    throttle. Raises ``AuthFailed``, ``AuthThrottled`` or ``AuthDelayed``."""
    max_wait = settings.CORREIO_AUTH_WEB_MAX_WAIT_MS / 1000
    reservation = throttle.reserve(f"{user.get_username()}#2fa", client, max_wait=max_wait,
                                   account_limit=settings.CORREIO_AUTH_CODE_LIMIT)
    if reservation.wait:
        time.sleep(reservation.wait)
    row = TwoFactor.objects.filter(user=user, confirmed_at__isnull=False).first()
    code = (code or "")[:64]
    ok = row is not None and (
        _accept_totp(row, code, time.time()) or _use_recovery_code(row, code)
    )
    if not ok:
        throttle.failed(reservation)
        raise AuthFailed("wrong code")
    throttle.succeeded(reservation)


def disable(user, code: str, client: str | None) -> None:
    """Turn two-factor off after a valid code (``AuthFailed`` otherwise)."""
    check_second_factor(user, code, client)
    TwoFactor.objects.filter(user=user).delete()


__all__ = [
    "begin_enrolment",
    "check_second_factor",
    "confirm_enrolment",
    "disable",
    "is_enabled",
    "is_enabled_for_user",
    "pending_secret",
    "recovery_codes_left",
]
