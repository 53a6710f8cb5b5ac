"""Sign-in bookkeeping shared by every door (SMTP AUTH, IMAP, POP3, the webmail, the admin):
the failed-login throttle's records."""

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
