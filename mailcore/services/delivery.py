"""Delivery and append: raw bytes in, one stored copy, a Message row in each target folder.

The bytes received are the message: they are stored once, unchanged, and parsed once here into
the cached fields (envelope, body structure, preview, thread) that every door reads."""

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from mailcore import blobstore
from mailcore.events import ChangeEvent, publish_on_commit
from mailcore.exceptions import MessageTooLarge
from mailcore.mime.parse import ParsedMessage, parse_message
from mailcore.models import Folder, Message
from mailcore.services import pop3, search
from mailcore.services.accounts import resolve_recipient
from mailcore.services.common import FlagSet, bump_folder
from mailcore.services.quota import add_usage

MAX_THREAD_REFERENCES = 20


@dataclass
class Delivered:
    mailbox_id: int
    folder_id: int
    uid: int
    message_pk: int


@dataclass
class DeliveryResult:
    sha256: str
    delivered: list[Delivered] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)


def _format_addresses(addresses: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{name} <{addr}>" if name else addr for name, addr in addresses)


def _thread_id(mailbox_id: int, parsed: ParsedMessage) -> str:
    """The thread of a message: that of any message it refers to in the same mailbox (so a
    conversation spans folders, Sent included), else one named after its root message-id."""
    refs = [ref for ref in [*parsed.references, parsed.in_reply_to] if ref][-MAX_THREAD_REFERENCES:]
    if refs:
        existing = (
            Message.objects.filter(mailbox_id=mailbox_id, message_id__in=refs)
            .values_list("thread_id", flat=True)
            .first()
        )
        if existing:
            return existing
    root = refs[0] if refs else parsed.message_id
    if not root:
        root = f"{parsed.subject}\0{parsed.date}\0{_format_addresses(parsed.from_)}"
    return hashlib.sha256(root.encode("utf-8", "replace")).hexdigest()[:32]


def _message_fields(parsed: ParsedMessage) -> dict:
    name, addr = parsed.from_[0] if parsed.from_ else ("", "")
    return {
        "subject": parsed.subject,
        "from_name": name[:500],
        "from_addr": addr[:500],
        "to_addrs": _format_addresses(parsed.to),
        "cc_addrs": _format_addresses(parsed.cc),
        "date": parsed.date,
        "message_id": parsed.message_id[:998],
        "in_reply_to": parsed.in_reply_to[:998],
        "references": " ".join(parsed.references),
        "preview": parsed.preview[:256],
        "has_attachments": parsed.has_attachments,
        "envelope": parsed.envelope,
        "structure": parsed.structure,
    }


def _insert(
    folder_id: int,
    mailbox_id: int,
    raw: bytes,
    sha: str,
    parsed: ParsedMessage,
    flags: FlagSet,
    internal_date: datetime,
    kind: str = "new",
    enforce_quota: bool = True,
) -> Message:
    unseen = 0 if flags.system.get("seen") else 1
    uid, modseq = bump_folder(folder_id, new=1, unseen=unseen)
    message = Message.objects.create(
        mailbox_id=mailbox_id,
        folder_id=folder_id,
        uid=uid,
        modseq=modseq,
        keywords=flags.keywords,
        internal_date=internal_date,
        size=len(raw),
        blob_id=sha,
        thread_id=_thread_id(mailbox_id, parsed),
        **flags.system,
        **_message_fields(parsed),
    )
    add_usage(mailbox_id, len(raw), enforce=enforce_quota)
    publish_on_commit(ChangeEvent(mailbox_id, folder_id, modseq, kind))
    return message


def deliver_batch(
    items: Sequence[tuple[bytes, Sequence[int]]],
    *,
    internal_date: datetime | None = None,
    enforce_quota: bool = True,
) -> list[list[Delivered]]:
    """Deliver several messages, each to the INBOX of its mailboxes, in ONE transaction.

    This is the group commit behind SMTP intake: many messages share one durable commit. Either
    all are stored or, on any error, none is (the caller then retries them one by one). Raises
    ``QuotaExceeded`` when ``enforce_quota`` and a mailbox would go over quota. The work is done
    by :func:`mailcore.services.intake.deliver_many`, the one delivery path."""
    from mailcore.services.intake import deliver_many  # intake builds on this module's helpers

    return deliver_many(items, internal_date=internal_date, enforce_quota=enforce_quota)


def deliver_to_mailboxes(
    raw: bytes, mailbox_ids: Sequence[int], *, enforce_quota: bool = True
) -> list[Delivered]:
    """Deliver one message to the INBOX of each mailbox (one stored copy)."""
    return deliver_batch([(raw, mailbox_ids)], enforce_quota=enforce_quota)[0]


def deliver_message(raw: bytes, recipients: Iterable[str], *, enforce_quota: bool = True):
    """Deliver a message to local recipient addresses, expanding aliases.

    Returns a ``DeliveryResult`` whose ``remote`` lists alias destinations outside Correio's
    domains (for the outbound queue). Raises what :func:`resolve_recipient` raises for a bad
    recipient and ``QuotaExceeded``; nothing is stored when anything is raised."""
    mailbox_ids: list[int] = []
    remote: list[str] = []
    for address in recipients:
        resolution = resolve_recipient(address)
        mailbox_ids.extend(resolution.mailbox_ids)
        remote.extend(resolution.remote)
    delivered = deliver_to_mailboxes(
        raw, list(dict.fromkeys(mailbox_ids)), enforce_quota=enforce_quota
    )
    return DeliveryResult(
        sha256=blobstore.blob_id(raw), delivered=delivered, remote=list(dict.fromkeys(remote))
    )


def append_message(
    folder: Folder,
    raw: bytes,
    *,
    flags: Iterable[str] = (),
    internal_date: datetime | None = None,
    max_size: int | None = None,
) -> Message:
    """Append a message to a folder with flags and an internal date (IMAP APPEND, RFC 3501
    §6.3.11; saving to Sent or Drafts). Raises ``QuotaExceeded`` or ``MessageTooLarge``."""
    if max_size is not None and len(raw) > max_size:
        raise MessageTooLarge()
    parsed = parse_message(raw)
    with transaction.atomic():
        sha = blobstore.store_blob(raw)
        search.index_blob(sha, raw, parsed)
        pop3.record_sizes([(sha, raw)])
        return _insert(
            folder.pk,
            folder.mailbox_id,
            raw,
            sha,
            parsed,
            FlagSet.parse(flags),
            internal_date or timezone.now(),
        )
