"""Recipient checks for mail intake: what an SMTP server must know at RCPT time.

RFC 5321 §3.3 lets a server refuse a recipient at RCPT, and Correio does so for every problem
it can see then (unknown user, relay, disabled or full mailbox), so that bad mail is refused
before its data is sent rather than bounced afterwards. Who a recipient is, is decided by
:func:`mailcore.services.accounts.resolve_recipient`; whether its mailboxes can take mail, by
:mod:`mailcore.services.quota`."""

from mailcore.exceptions import UnknownRecipient
from mailcore.models import Domain
from mailcore.services.accounts import Resolution, normalize_address, resolve_recipient
from mailcore.services.quota import check_can_receive

POSTMASTER = "postmaster"


def check_recipient(address: str) -> Resolution:
    """Resolve one envelope recipient for delivery and check its mailboxes can take mail now.

    Raises what :func:`~mailcore.services.accounts.resolve_recipient` raises (``RelayDenied``,
    ``UnknownRecipient``, ``MailboxInactive``, ``AliasLoop``, also for aliases that only lead
    back to themselves) and ``QuotaExceeded`` when any mailbox it reaches is already full (a
    temporary failure: the sender retries later). The bare address ``postmaster`` (RFC 5321
    §4.5.1: it must be accepted without a domain) goes to the postmaster of the first local
    domain that has one."""
    if normalize_address(address) == POSTMASTER:
        return _resolve_bare_postmaster()
    resolution = resolve_recipient(address)
    check_can_receive(resolution.mailbox_ids)
    return resolution


def _resolve_bare_postmaster() -> Resolution:
    for name in Domain.objects.filter(active=True).order_by("name").values_list("name", flat=True):
        try:
            return check_recipient(f"{POSTMASTER}@{name}")
        except UnknownRecipient:
            continue
    raise UnknownRecipient("no postmaster here")
