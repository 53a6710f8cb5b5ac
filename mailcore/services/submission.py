"""Message submission (RFC 6409) for authenticated users: who may send as what, and handing the
message to the outbound queue.

The envelope sender must be one of the user's own addresses (the mailbox, or an alias delivering
only to it: :func:`accounts.owned_addresses`), else ``SenderNotOwned`` (553 5.7.1 on the wire);
the message must have exactly one From field and at most one Sender field, all of whose
addresses are the user's (RFC 5322 §3.6), else ``HeaderSenderRefused`` (550 5.7.1). Recipients may be anywhere; those of local domains
must exist. A missing Date or Message-ID is added (RFC 6409 §8.2, §8.3).

``submit_many`` queues the messages of several sessions in one transaction (the submission
listener's group commit: one durable commit, one delivery task, for all of them)."""

import email.utils
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from mailcore.exceptions import HeaderSenderRefused, MailError, SenderNotOwned
from mailcore.mime.addresses import parse_address_list
from mailcore.mime.headers import split_header_block
from mailcore.models import Mailbox
from mailcore.services import accounts
from mailcore.services.dispatch import dispatch_many
from mailcore.services.outbound.queue import (
    EnqueueResult,
    address_domain,
    check_address,
    enqueue_outbound,
)


def owned_addresses(mailbox: Mailbox) -> frozenset[str]:
    """What the user may send as; a listener keeps it for the session after AUTH."""
    return frozenset(a.lower() for a in accounts.owned_addresses(mailbox))


def check_sender(mailbox: Mailbox, address: str, owned: frozenset[str] | None = None) -> str:
    """The envelope sender of a submission: one of the user's addresses (never ``<>``, which
    is for bounces). ``owned`` saves looking the addresses up again."""
    value = check_address(address, allow_null=True)
    if value not in (owned if owned is not None else owned_addresses(mailbox)):
        raise SenderNotOwned(f"{value} is not an address of {mailbox.address}")
    return value


def check_submission_recipient(address: str) -> str:
    """A recipient of a submission: any well-formed address; one of a local domain must exist
    (raises what :func:`accounts.resolve_recipient` raises)."""
    value = check_address(address)
    if accounts.is_local_domain(address_domain(value)):
        accounts.resolve_recipient(value)
    return value


def check_from_header(
    mailbox: Mailbox, raw: bytes, owned: frozenset[str] | None = None
) -> None:
    """RFC 5322 §3.6: exactly one From field and at most one Sender field; every address of
    From (§3.6.2) and the one mailbox of Sender must be the user's. Otherwise
    ``HeaderSenderRefused``: a second From after the user's own would be what recipients see
    (and what DKIM signs), so counting fields is part of the ownership check."""
    headers, _ = split_header_block(raw)
    froms = [value for name, value in headers if name.lower() == "from"]
    senders = [value for name, value in headers if name.lower() == "sender"]
    if len(froms) != 1:
        raise HeaderSenderRefused(f"the message has {len(froms)} From fields, not one")
    if len(senders) > 1:
        raise HeaderSenderRefused(f"the message has {len(senders)} Sender fields")
    addresses = [addr.lower() for _, addr in parse_address_list(froms[0])]
    if not addresses:
        raise HeaderSenderRefused("the message has no From address")
    if senders:
        sender = [addr.lower() for _, addr in parse_address_list(senders[0])]
        if len(sender) != 1:
            raise HeaderSenderRefused("the Sender field must hold exactly one address")
        addresses += sender
    if owned is None:
        owned = owned_addresses(mailbox)
    for address in addresses:
        if address not in owned:
            raise HeaderSenderRefused(f"{address} is not an address of {mailbox.address}")


def complete_headers(raw: bytes) -> bytes:
    """Add Date and Message-ID when the client left them out (RFC 6409 §8.2, §8.3)."""
    headers, _ = split_header_block(raw)
    names = {name.lower() for name, _ in headers}
    added = b""
    if "date" not in names:
        added += f"Date: {email.utils.formatdate(localtime=False)}\r\n".encode()
    if "message-id" not in names:
        added += f"Message-ID: <{secrets.token_hex(16)}@{settings.CORREIO_HOSTNAME}>\r\n".encode()
    return added + raw


def submit_message(
    mailbox: Mailbox,
    mail_from: str,
    recipients: Iterable[str],
    raw: bytes,
    owned: frozenset[str] | None = None,
    *,
    dispatch_task: bool = True,
    local_domains: dict[str, bool] | None = None,
) -> EnqueueResult:
    """Check and queue a submitted message (local recipients delivered at once). Raises
    ``SenderNotOwned``, ``InvalidAddress`` and what :func:`enqueue_outbound` raises."""
    if owned is None:
        owned = owned_addresses(mailbox)
    sender = check_sender(mailbox, mail_from, owned)
    check_from_header(mailbox, raw, owned)
    return enqueue_outbound(complete_headers(raw), sender, recipients, mailbox=mailbox,
                            dispatch_task=dispatch_task, local_domains=local_domains)


@dataclass(frozen=True)
class Submission:
    """One message handed over by an authenticated session, for :func:`submit_many`."""

    mailbox: Mailbox
    mail_from: str
    recipients: tuple[str, ...]
    raw: bytes
    owned: frozenset[str] | None = None


def submit_many(items: Sequence[Submission]) -> list[EnqueueResult | MailError]:
    """Check and queue several submitted messages in ONE transaction, each in a savepoint of
    its own: a message refused (sender not owned, unknown local recipient, full mailbox) is
    returned as its error and leaves nothing behind, the others are queued. After the commit,
    one delivery task carries every queued message (:func:`dispatch_many`). Any other
    error fails the whole batch (nothing is queued) and is raised."""
    results: list[EnqueueResult | MailError] = []
    queued: list[int] = []
    local_domains: dict[str, bool] = {}  # looked up once per batch
    with transaction.atomic():
        for item in items:
            try:
                with transaction.atomic():
                    result = submit_message(item.mailbox, item.mail_from, item.recipients,
                                            item.raw, item.owned, dispatch_task=False,
                                            local_domains=local_domains)
            except MailError as error:
                results.append(error)
                continue
            results.append(result)
            if result.outbound_id is not None:
                queued.append(result.outbound_id)
        if queued and settings.CORREIO_OUTBOUND_DISPATCH:
            transaction.on_commit(lambda: dispatch_many(queued))
    return results
