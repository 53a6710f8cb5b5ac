"""Recipient checks for mail intake: what an SMTP server must know at RCPT time.

RFC 5321 §3.3 lets a server refuse a recipient at RCPT, and Correio does so for every problem
it can see then (unknown user, relay, disabled or full mailbox), so that bad mail is refused
before its data is sent rather than bounced afterwards."""

from django.db import connection

from mailcore.exceptions import AliasLoop, QuotaExceeded, UnknownRecipient
from mailcore.models import Domain, Mailbox
from mailcore.services.accounts import Resolution, normalize_address, resolve_recipient
from mailcore.services.quota import is_over_quota

POSTMASTER = "postmaster"
_MAILBOX_SQL = (
    f"SELECT m.id, m.quota, m.used_bytes FROM {Mailbox._meta.db_table} m "
    f"JOIN {Domain._meta.db_table} d ON d.id = m.domain_id "
    "WHERE m.address = %s AND m.active AND d.active"
)


def check_recipient(address: str) -> Resolution:
    """Resolve one envelope recipient for delivery and check its mailboxes can take mail now.

    Raises what :func:`~mailcore.services.accounts.resolve_recipient` raises (``RelayDenied``,
    ``UnknownRecipient``, ``MailboxInactive``, ``AliasLoop``, also for aliases that only lead
    back to themselves) and ``QuotaExceeded`` when any mailbox it reaches is already full (a
    temporary failure: the sender retries later). The bare address ``postmaster`` (RFC 5321 §4.5.1: it must be accepted without a domain) goes to the
    postmaster of the first local domain that has one."""
    normalized = normalize_address(address)
    if normalized == POSTMASTER:
        return _resolve_bare_postmaster()
    # The common case in one query: an active mailbox of an active domain, which
    # resolve_recipient would pick first too (an exact mailbox wins over aliases).
    # Plain SQL: it runs for every recipient of every message, and building the ORM query
    # costs about twenty times running it.
    with connection.cursor() as cursor:
        cursor.execute(_MAILBOX_SQL, [normalized])
        row = cursor.fetchone()
    if row is not None:
        pk, quota, used = row
        if quota and used >= quota:
            raise QuotaExceeded()
        return Resolution(mailbox_ids=[pk])
    resolution = resolve_recipient(address)
    if not resolution.mailbox_ids and not resolution.remote:
        # Aliases that only lead back to themselves: accepting would lose the message.
        raise AliasLoop(f"{address} leads to no mailbox")
    for mailbox_id in resolution.mailbox_ids:
        if is_over_quota(mailbox_id):
            raise QuotaExceeded()
    return resolution


def _resolve_bare_postmaster() -> Resolution:
    for name in Domain.objects.filter(active=True).order_by("name").values_list("name", flat=True):
        try:
            return check_recipient(f"{POSTMASTER}@{name}")
        except UnknownRecipient:
            continue
    raise UnknownRecipient("no postmaster here")
