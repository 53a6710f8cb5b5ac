"""Failed-login bookkeeping shared by every door (SMTP AUTH, IMAP, POP3, web login)."""

from django.db import models


class AuthFailure(models.Model):
    """Failed logins for one key (``addr:<address>`` or ``ip:<address>``) in the current window.

    Kept in the database, not in process memory, because the doors run in separate processes and
    must share one throttle."""

    key = models.CharField(max_length=320, unique=True)
    count = models.PositiveIntegerField(default=0)
    window_start = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"
