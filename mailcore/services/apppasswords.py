"""App passwords: one server-made password per mail client, shown once, revocable one by one,
accepted by IMAP, POP3 and SMTP submission through the one credential check
(mailcore/services/credentials.py) like the account password — and, with two-factor sign-in on,
instead of it.

The secret is 20 letters from ``secrets`` (26**20, about 94 bits), shown in groups of four; clients
may send it with or without the spaces, in either case. Only SHA-256 of it is stored (see
``AppPassword``). Each use records when and from which address, at most once a minute per
password so that clients logging in every few seconds do not turn logins into writes."""

import hashlib
import secrets
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from mailcore.models import AppPassword, Mailbox

ALPHABET = "abcdefghijklmnopqrstuvwxyz"
LENGTH = 20
MAX_PER_MAILBOX = 50
MAX_LABEL = 100
USE_RECORD_INTERVAL = timedelta(seconds=60)


def _normalize(password: str) -> str | None:
    """The 20 letters of something typed as an app password, or None if it cannot be one."""
    if len(password) > 64:
        return None
    letters = "".join(password.split()).replace("-", "").lower()
    if len(letters) != LENGTH or any(ch not in ALPHABET for ch in letters):
        return None
    return letters


def _digest(letters: str) -> str:
    return hashlib.sha256(b"correio app password\0" + letters.encode()).hexdigest()


def _clean_label(label: str) -> str:
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in label).split())
    return text[:MAX_LABEL]


def create_app_password(mailbox: Mailbox, label: str) -> tuple[AppPassword, str]:
    """Make an app password; returns the row and the secret, shown once (in groups of four).
    Raises ``ValidationError`` for an empty label or when the mailbox has too many."""
    label = _clean_label(label)
    if not label:
        raise ValidationError("Give the app password a name, such as the device it is for.")
    if AppPassword.objects.filter(mailbox=mailbox).count() >= MAX_PER_MAILBOX:
        raise ValidationError(f"At most {MAX_PER_MAILBOX} app passwords; revoke an old one.")
    letters = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    row = AppPassword.objects.create(mailbox=mailbox, label=label, digest=_digest(letters))
    shown = " ".join(letters[i : i + 4] for i in range(0, LENGTH, 4))
    return row, shown


def list_app_passwords(mailbox: Mailbox) -> list[AppPassword]:
    return list(AppPassword.objects.filter(mailbox=mailbox))


def revoke_app_password(mailbox: Mailbox, app_password_id: int) -> bool:
    """Delete one of the mailbox's app passwords; False when it is not theirs or already gone.
    Sessions opened with it end (mailcore/services/revocation.py)."""
    deleted, _ = AppPassword.objects.filter(mailbox=mailbox, pk=app_password_id).delete()
    return bool(deleted)


def match_app_password(mailbox: Mailbox, password: str, client: str | None) -> AppPassword | None:
    """The mailbox's app password equal to ``password`` (its use recorded), or None."""
    letters = _normalize(password)
    if letters is None:
        return None
    found = AppPassword.objects.filter(mailbox=mailbox, digest=_digest(letters)).first()
    if found is None:
        return None
    now = timezone.now()
    client = (client or "")[:64]
    AppPassword.objects.filter(pk=found.pk).filter(
        Q(last_used_at__isnull=True)
        | Q(last_used_at__lt=now - USE_RECORD_INTERVAL)
        | ~Q(last_used_from=client)
    ).update(last_used_at=now, last_used_from=client)
    return found


__all__ = [
    "create_app_password",
    "list_app_passwords",
    "match_app_password",
    "revoke_app_password",
]
