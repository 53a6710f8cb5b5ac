"""Quota: a mailbox's stored bytes against its limit."""

from django.db import connection

from mailcore.exceptions import QuotaExceeded
from mailcore.models import Mailbox


def check_quota(mailbox_id: int, extra_bytes: int) -> None:
    """Raise ``QuotaExceeded`` when adding ``extra_bytes`` would take the mailbox over its quota
    (0 = unlimited). Call inside the transaction that stores the bytes."""
    quota, used = Mailbox.objects.values_list("quota", "used_bytes").get(pk=mailbox_id)
    if quota and used + extra_bytes > quota:
        raise QuotaExceeded(f"{used + extra_bytes} bytes would exceed the quota of {quota}")


def is_over_quota(mailbox_id: int) -> bool:
    """True when the mailbox is already full: SMTP answers 452 4.2.2 at RCPT."""
    quota, used = Mailbox.objects.values_list("quota", "used_bytes").get(pk=mailbox_id)
    return bool(quota) and used >= quota


def add_usage(mailbox_id: int, delta: int, *, enforce: bool = False) -> None:
    """Add ``delta`` bytes to the mailbox's usage. With ``enforce``, raise ``QuotaExceeded`` when
    that takes it over its quota; the caller's transaction then stores nothing."""
    if not delta:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE mailcore_mailbox SET used_bytes = used_bytes + %s WHERE id = %s"
            " RETURNING quota, used_bytes",
            [delta, mailbox_id],
        )
        row = cursor.fetchone()
    if enforce and delta > 0 and row is not None:
        quota, used = row
        if quota and used > quota:
            raise QuotaExceeded(f"{used} bytes would exceed the quota of {quota}")
