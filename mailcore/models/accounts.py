"""Sign-in bookkeeping shared by every door (SMTP AUTH, IMAP, POP3, the webmail, the admin):
the failed-login throttle's records."""

from django.conf import settings
from django.db import models


class LoginThrottle(models.Model):
    """One row per (login name, client address) that attempted to sign in recently, and one row
    per client address (``login = ""``) that carries that address's spraying block and serialises
    its reservations (mailcore/services/throttle.py).

    Kept in the database, not in process memory, because the doors run in separate processes and
    must share one throttle."""

    login = models.CharField(max_length=320, blank=True)
    client = models.CharField(max_length=64, blank=True)
    # Attempts counted since the record was last cleared by a success, in-flight ones included
    # (a reservation counts before the password hash runs, so concurrency cannot exceed limits).
    attempts = models.PositiveIntegerField(default=0)
    # True once one of these attempts really failed: only those count for the account's soft
    # limit and for spraying, so logins still in progress never block anyone.
    failed = models.BooleanField(default=False)
    last_attempt = models.DateTimeField()
    blocked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["login", "client"], name="login_throttle_pair"),
        ]
        indexes = [
            models.Index(fields=["client", "last_attempt"], name="login_throttle_client"),
            models.Index(fields=["last_attempt"], name="login_throttle_age"),
        ]

    def __str__(self) -> str:
        return f"{self.login or '*'} from {self.client or '?'}: {self.attempts}"


class AppPassword(models.Model):
    """A password for one mail client (IMAP, POP3, SMTP submission), made by the server and shown
    once. Only a SHA-256 digest is stored: the secret is 20 random letters (94 bits), which no
    guesser can search, so a slow hash would add cost and no safety
    (mailcore/services/apppasswords.py)."""

    mailbox = models.ForeignKey(
        "mailcore.Mailbox", on_delete=models.CASCADE, related_name="app_passwords"
    )
    label = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_from = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.label} ({self.mailbox_id})"


class TwoFactor(models.Model):
    """Time-based one-time passwords (RFC 6238) for one user's web and admin sign-in, with
    single-use recovery codes (mailcore/services/twofactor.py). On once ``confirmed_at`` is set;
    then the mail doors take app passwords only."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="two_factor"
    )
    secret = models.CharField(max_length=64)  # base32, as authenticator apps take it
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # The last time step accepted: a code is good once (RFC 6238 §5.2).
    last_step = models.BigIntegerField(default=0)
    recovery_digests = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        return f"two-factor for {self.user_id} ({'on' if self.confirmed_at else 'pending'})"


class PasswordEpoch(models.Model):
    """What open sessions compare to notice a password change, kept across re-hashes of the same
    password (mailcore/services/passwords.py). Without a row, or once the user's stored hash is
    no longer the one recorded here (a password set by any path: the webmail, the admin, a
    command), the epoch is derived from the stored hash itself; a re-hash at login (PBKDF2 to
    Argon2id) records the new hash and carries the old epoch over, so it ends no session."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="password_epoch"
    )
    # Django's session auth hash (HMAC-SHA256 with SECRET_KEY) of the hash the epoch began with:
    # the value web sessions opened before the re-hash carry; the old hash itself is not kept.
    epoch = models.CharField(max_length=128)
    # SHA-256 of the stored hash this epoch holds for.
    current = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"password epoch of {self.user_id}"
