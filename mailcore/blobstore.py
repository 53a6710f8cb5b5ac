"""Raw messages stored once, addressed by their SHA-256, in the database (so a message and its
bytes commit in the same transaction: nothing is acknowledged that is not durable)."""

import hashlib
from collections.abc import Iterable

from django.db.models import Exists, OuterRef

from mailcore.models import Blob, Message, OutboundMessage


def blob_id(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def store_blob(raw: bytes) -> str:
    """Store the bytes unless already stored; return their id. Call inside the transaction that
    creates the rows referring to it."""
    sha = blob_id(raw)
    Blob.objects.bulk_create([Blob(sha256=sha, size=len(raw), data=raw)], ignore_conflicts=True)
    return sha


def load_blob(sha: str) -> bytes:
    return bytes(Blob.objects.values_list("data", flat=True).get(pk=sha))


def delete_unreferenced(shas: Iterable[str]) -> int:
    """Delete the given blobs that no message (in a folder or in the outbound queue) refers to
    any more."""
    shas = list(set(shas))
    if not shas:
        return 0
    referenced = Message.objects.filter(blob_id=OuterRef("pk"))
    queued = OutboundMessage.objects.filter(blob_id=OuterRef("pk"))
    orphans = Blob.objects.filter(pk__in=shas).exclude(Exists(referenced)).exclude(Exists(queued))
    deleted, _ = orphans.delete()
    return deleted
