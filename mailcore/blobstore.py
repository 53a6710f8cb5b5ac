"""Raw messages stored once, addressed by their SHA-256, in the database (so a message and its
bytes commit in the same transaction: nothing is acknowledged that is not durable)."""

import hashlib
from collections.abc import Iterable

from django.db import connection
from django.db.models import Exists, OuterRef
from django.utils import timezone

from mailcore.models import Blob, Message, OutboundMessage


def blob_id(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def store_blob(raw: bytes, sha: str | None = None) -> str:
    """Store the bytes unless already stored; return their id. Call inside the transaction that
    creates the rows referring to it."""
    sha = sha or blob_id(raw)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO mailcore_blob (sha256, size, data, created) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (sha256) DO NOTHING",
            [sha, len(raw), raw, connection.ops.adapt_datetimefield_value(timezone.now())],
        )
    return sha


_BLOB_BATCH = 100


def store_blobs(items: Iterable[tuple[str, bytes]]) -> None:
    """Store several ``(sha, raw)`` at once, like :func:`store_blob` (a group commit's blobs:
    one statement per hundred rather than one per message)."""
    items = list(items)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        for start in range(0, len(items), _BLOB_BATCH):
            batch = items[start:start + _BLOB_BATCH]
            cursor.execute(
                "INSERT INTO mailcore_blob (sha256, size, data, created) VALUES "
                + ", ".join(["(%s, %s, %s, %s)"] * len(batch))
                + " ON CONFLICT (sha256) DO NOTHING",
                [value for sha, raw in batch for value in (sha, len(raw), raw, now)],
            )


def load_blob(sha: str) -> bytes:
    return bytes(Blob.objects.values_list("data", flat=True).get(pk=sha))


def delete_unreferenced(shas: Iterable[str]) -> int:
    """Delete the given blobs that no message (in a folder or in the outbound queue) refers to
    any more."""
    shas = list(set(shas))
    if not shas:
        return 0
    # Most expunged mail has its bytes still held by a copy elsewhere; one cheap query settles
    # that before the ORM's cascading delete (search document, POP3 size) is built.
    marks = ", ".join(["%s"] * len(shas))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT blob_id FROM {Message._meta.db_table} WHERE blob_id IN ({marks})",
            shas,
        )
        still_used = {row[0] for row in cursor.fetchall()}
    shas = [sha for sha in shas if sha not in still_used]
    if not shas:
        return 0
    referenced = Message.objects.filter(blob_id=OuterRef("pk"))
    queued = OutboundMessage.objects.filter(blob_id=OuterRef("pk"))
    orphans = Blob.objects.filter(pk__in=shas).exclude(Exists(referenced)).exclude(Exists(queued))
    deleted, _ = orphans.delete()
    return deleted
