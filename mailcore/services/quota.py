"""Quota: a mailbox's stored bytes against its limit."""

from django.db.models import F

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


def add_usage(mailbox_id: int, delta: int) -> None:
    if delta:
        Mailbox.objects.filter(pk=mailbox_id).update(used_bytes=F("used_bytes") + delta)
