"""Accepting mail into the outbound queue, and the envelope address checks it applies.

``enqueue_outbound`` stores the raw message once with its envelope; local recipients are
delivered at once through :mod:`mailcore.services.delivery` (they never touch the network),
remote ones get a queue row each, and a delivery task is published after commit
(:mod:`mailcore.services.dispatch`). A held message ("send later", "undo send") waits in the
queue, local recipients too, and its owner can take it back until it leaves."""

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from mailcore import blobstore
from mailcore.exceptions import InvalidAddress, MessageTooLarge
from mailcore.mime.fields import first_header
from mailcore.mime.headers import decode_header_value, split_header_block
from mailcore.mime.trace import with_return_path
from mailcore.models import Mailbox, OutboundMessage, OutboundRecipient
from mailcore.services.accounts import is_local_domain, normalize_address
from mailcore.services.delivery import Delivered, deliver_to_inboxes, resolve_recipients
from mailcore.services.dispatch import dispatch
from mailcore.trust import srs

MAX_RECIPIENTS = 1000
# RFC 5321 §4.5.3.1: local part 64 octets, a path 256 (so an address 254).
MAX_LOCAL_PART = 64
MAX_ADDRESS = 254
# No controls, spaces, angle brackets or characters that end a command or a header.
_BAD_ADDRESS_CHARS = re.compile(r"[\x00-\x20\x7f<>()\[\],;:\\\"]")


# Sieve for local recipients of queued mail (RFC 5228 §2.10) is run by
# mailcore.services.filtering, which itself queues redirects, replies and bounces here: it
# registers at app ready (mailcore/apps.py) instead of being imported. Called with
# (message, envelope sender, recipients, mailbox ids); returns what it stored, or None when no
# mailbox has a script to run and the plain INBOX delivery below is to be done.
LocalFilter = Callable[[bytes, str, Sequence[str], Sequence[int]], list[Delivered] | None]
_local_filter: LocalFilter | None = None


def set_local_filter(function: LocalFilter | None) -> None:
    global _local_filter
    _local_filter = function


@dataclass
class EnqueueResult:
    outbound_id: int | None
    delivered: list[Delivered] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)


# --- Addresses ----------------------------------------------------------------------------------


def check_address(address: str, *, allow_null: bool = False) -> str:
    """A normalized envelope address, or ``InvalidAddress``. Refuses anything that could end a
    command or inject a header line (CR, LF, controls, spaces, brackets), overlong parts, and
    addresses without a local part and a domain. ``allow_null`` accepts ``""``/``<>``."""
    if not isinstance(address, str):
        raise InvalidAddress("an address must be text")
    if "\r" in address or "\n" in address:
        raise InvalidAddress("line breaks in an address")
    value = normalize_address(address)
    if not value:
        if allow_null:
            return ""
        raise InvalidAddress("empty address")
    local, at, domain = value.rpartition("@")
    if (
        not at
        or not local
        or not domain
        or len(local.encode()) > MAX_LOCAL_PART
        or len(value.encode()) > MAX_ADDRESS
        or _BAD_ADDRESS_CHARS.search(value)
        or "." not in domain
        or domain.startswith(".")
        or domain.endswith(".")
        or ".." in domain
    ):
        raise InvalidAddress(f"{address!r} is not a valid address")
    return value


def address_domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def _summary(raw: bytes) -> tuple[str, str]:
    headers, _ = split_header_block(raw)
    subject = first_header(headers, "subject")
    message_id = first_header(headers, "message-id")
    return (
        decode_header_value(subject)[:500] if subject is not None else "",
        decode_header_value(message_id)[:998] if message_id is not None else "",
    )


# --- Enqueue ----------------------------------------------------------------------------------


def enqueue_outbound(
    raw: bytes,
    mail_from: str,
    recipients: Iterable[str],
    *,
    mailbox: Mailbox | None = None,
    hold_until: datetime | None = None,
    enforce_quota: bool = True,
    dispatch_task: bool = True,
    local_domains: dict[str, bool] | None = None,
) -> EnqueueResult:
    """Accept a message for any recipients: deliver local ones now, queue remote ones.

    ``mail_from`` is the envelope sender (``""`` for ``<>``); ``hold_until`` keeps every
    recipient (local ones too) waiting until then ("send later", "undo send"). Raises
    ``InvalidAddress`` for a malformed address, ``MessageTooLarge``, and for local recipients
    what :func:`mailcore.services.delivery.deliver_message` raises (unknown user, quota); then
    nothing is stored or queued. ``dispatch_task=False`` leaves publishing the delivery task
    to the caller (one task for a group of messages,
    :func:`mailcore.services.dispatch.dispatch_many`); ``local_domains``
    remembers which domains are local across the messages of one transaction."""
    sender = check_address(mail_from, allow_null=True)
    rcpts = list(dict.fromkeys(check_address(r) for r in recipients))
    if not rcpts:
        raise InvalidAddress("no recipients")
    if len(rcpts) > MAX_RECIPIENTS:
        raise InvalidAddress("too many recipients")
    if len(raw) > settings.CORREIO_MAX_MESSAGE_SIZE:
        raise MessageTooLarge()
    now = timezone.now()
    held = hold_until is not None and hold_until > now
    result = EnqueueResult(outbound_id=None)
    if local_domains is None:
        local_domains = {}
    with transaction.atomic():
        local, remote = [], []
        for address in rcpts:
            domain = address_domain(address)
            if domain not in local_domains:
                local_domains[domain] = is_local_domain(domain)
            (local if local_domains[domain] and not held else remote).append(address)
        if local:
            # Final delivery writes the reverse-path (RFC 5321 §4.4), <> for a DSN.
            result.delivered, forwarded = deliver_local(with_return_path(raw, sender), sender,
                                                        local, enforce_quota=enforce_quota)
            remote.extend(a for a in forwarded if a not in remote)
        if remote:
            entry = _create_entry(raw, sender, remote, mailbox, now, hold_until if held else None)
            result.outbound_id = entry.pk
            result.queued = remote
            if not held and dispatch_task and settings.CORREIO_OUTBOUND_DISPATCH:
                transaction.on_commit(lambda: dispatch(entry.pk))
    return result


def deliver_local(raw: bytes, sender: str, addresses: Sequence[str], *,
                  enforce_quota: bool = True) -> tuple[list[Delivered], list[str]]:
    """Deliver ``raw`` (with its Return-Path) to local recipient addresses, running their Sieve
    scripts: (what was stored, the alias destinations outside our domains). Raises what
    :func:`mailcore.services.delivery.resolve_recipients` raises and ``QuotaExceeded``."""
    mailbox_ids, forwarded = resolve_recipients(addresses)
    stored = (_local_filter(raw, sender, addresses, mailbox_ids)
              if _local_filter is not None and mailbox_ids else None)
    if stored is None:
        (stored,) = deliver_to_inboxes([(raw, mailbox_ids)], enforce_quota=enforce_quota)
    return stored, forwarded


def forward_message(raw: bytes, mail_from: str, recipients: Iterable[str]) -> EnqueueResult:
    """Mail received by the MX for local addresses some of which forward outside (aliases):
    local copies and the queue entry in one transaction. The envelope sender is rewritten
    with SRS into the alias's domain (mailcore/trust/srs.py), so the next hop's SPF passes and
    bounces come back here to be returned; one this queue cannot use is replaced by ``<>``."""
    recipients = list(recipients)
    return enqueue_outbound(raw, forwarding_sender(mail_from, recipients), recipients)


def forwarding_sender(mail_from: str, recipients: Sequence[str]) -> str:
    """The envelope sender a forwarded copy leaves with: SRS-rewritten into the domain of the
    first (alias) recipient, ``""`` when the original cannot be used."""
    try:
        sender = check_address(mail_from, allow_null=True)
    except InvalidAddress:
        return ""
    if sender and recipients:
        sender = srs.forward(sender, address_domain(recipients[0]), settings.SECRET_KEY)
    return sender


def _create_entry(raw, sender, recipients, mailbox, now, hold_until) -> OutboundMessage:
    sha = blobstore.store_blob(raw)
    subject, message_id = _summary(raw)
    entry = OutboundMessage.objects.create(
        blob_id=sha,
        mail_from=sender,
        mailbox=mailbox,
        size=len(raw),
        subject=subject,
        message_id=message_id,
        created=now,
        expires=now + timedelta(seconds=settings.CORREIO_OUTBOUND_LIFETIME),
        hold_until=hold_until,
    )
    first = hold_until or now
    OutboundRecipient.objects.bulk_create(
        [
            OutboundRecipient(
                message=entry, address=a, domain=address_domain(a), next_attempt=first
            )
            for a in recipients
        ]
    )
    return entry


@transaction.atomic
def delete_outbound(message_ids: Sequence[int]) -> int:
    """Delete queue entries (whatever their state) and their now unreferenced bytes."""
    shas = list(OutboundMessage.objects.filter(pk__in=message_ids).values_list("blob_id",
                                                                               flat=True))
    deleted, _ = OutboundMessage.objects.filter(pk__in=message_ids).delete()
    blobstore.delete_unreferenced(shas)
    return len(shas) if deleted else 0


def cancel_held(message_id: int, mailbox: Mailbox) -> bool:
    """"Undo send": drop a message of this mailbox that is still held. False when it is gone
    or already on its way."""
    now = timezone.now()
    with transaction.atomic():
        held = OutboundMessage.objects.filter(
            pk=message_id, mailbox=mailbox, hold_until__gt=now, locked_until__isnull=True
        )
        if not held.exists():
            return False
        delete_outbound([message_id])
    return True
