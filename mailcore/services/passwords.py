"""Password checks that re-hash without revoking, and the password epoch sessions compare.

Open sessions end when the password changes (issue 13): the web through Django's session auth
hash, the mail doors through the revocation watcher (mailcore/protocols/common/revocation.py).
Both used to compare the stored hash, so the re-hash of a right password at login (PBKDF2 or other
Argon2 parameters → mailcore/hashers.py) ended the user's other sessions once, though the
password had not changed. They now compare the **epoch** (:func:`epoch_of`): Django's session
auth hash of the stored hash, except after a re-hash, which keeps the epoch the old hash had
(``PasswordEpoch``). Any other change of the stored hash, by any path (the webmail, the admin,
``changepassword``, an UPDATE), no longer matches the recorded hash and so starts a new epoch.

The re-hash (:func:`check_password`) replaces the hash only if it is still the one checked (a
conditional UPDATE), so a password changed meanwhile is never overwritten by the old one."""

import hashlib

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password as check_hash
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils.crypto import salted_hmac

from mailcore.models import PasswordEpoch

# Django's own (AbstractBaseUser._get_session_auth_hash), so sessions opened before this code, or
# by Django's views, compare equal.
_KEY_SALT = "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash"


def _digest(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()


def session_hash(password_hash: str, secret: str | None = None) -> str:
    """Django's session auth hash of a stored password hash."""
    return salted_hmac(_KEY_SALT, password_hash, secret=secret, algorithm="sha256").hexdigest()


def epoch_of(password_hash: str, recorded_epoch: str | None, recorded_current: str | None) -> str:
    """The epoch of a user whose stored hash is ``password_hash``, given their ``PasswordEpoch``
    columns (None without a row)."""
    if recorded_epoch and recorded_current == _digest(password_hash):
        return recorded_epoch
    return session_hash(password_hash)


def epoch_for_user(user) -> str:
    """:func:`epoch_of` for a user instance; uses ``user.password_epoch`` when it was loaded
    with ``select_related`` (no query then), else one query."""
    try:
        row = user.password_epoch
    except PasswordEpoch.DoesNotExist:
        row = None
    return epoch_of(user.password, row and row.epoch, row and row.current)


def _rehash(user, raw_password: str, checked: str) -> None:
    new = make_password(raw_password)  # before the transaction: it takes tens of milliseconds
    users = get_user_model()._default_manager
    with transaction.atomic():
        row = PasswordEpoch.objects.select_for_update().filter(user_id=user.pk).first()
        epoch = epoch_of(checked, row and row.epoch, row and row.current)
        if not users.filter(pk=user.pk, password=checked).update(password=new):
            return  # changed meanwhile (a new password, or another login's re-hash): keep it
        PasswordEpoch.objects.update_or_create(
            user_id=user.pk, defaults={"epoch": epoch, "current": _digest(new)}
        )
    user.password = new
    # A cached relation would still describe the old hash.
    user._state.fields_cache.pop("password_epoch", None)


def check_password(user, raw_password: str) -> bool:
    """``user.check_password`` for every door: True when ``raw_password`` is right; a hash made
    with an older hasher or other parameters is re-made with the current ones, in the same
    epoch (no session ends)."""
    checked = user.password
    return check_hash(raw_password, checked,
                      setter=lambda raw: _rehash(user, raw, checked))


__all__ = ["check_password", "epoch_for_user", "epoch_of", "session_hash"]
