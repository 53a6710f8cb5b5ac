"""Raw messages stored once, addressed by their SHA-256, in the database (so a message and its
bytes commit in the same transaction: nothing is acknowledged that is not durable).

Bytes are shared, so storing and deleting them race on PostgreSQL: an EXPUNGE of the last copy
may find no reference to some bytes while a delivery of the same bytes, not yet committed, is
about to refer to them; one of the two then failed on the foreign key at commit. Each side
therefore locks the blob rows first (the last step of the store's lock order, see
``services.common``): a writer that will refer to bytes holds ``FOR KEY SHARE`` on them
(:func:`store_blobs`), a deleter holds ``FOR UPDATE`` and only then looks for references
(:func:`delete_unreferenced`). Whichever comes second sees what the first committed: the
deleter finds the new reference, or the writer finds the bytes gone and stores them again.
SQLite runs one writer at a time and needs none of this."""

import hashlib
from collections.abc import Iterable

from django.db import OperationalError, connection
from django.db.models import Exists, OuterRef
from django.utils import timezone

from mailcore.models import Blob, Message, OutboundMessage


def blob_id(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def store_blob(raw: bytes, sha: str | None = None) -> str:
    """Store the bytes unless already stored; return their id. Call inside the transaction that
    creates the rows referring to it."""
    sha = sha or blob_id(raw)
    store_blobs([(sha, raw)])
    return sha


_BLOB_BATCH = 100


def store_blobs(items: Iterable[tuple[str, bytes]]) -> None:
    """Store several ``(sha, raw)`` at once unless already stored (a group commit's blobs: one
    statement per hundred rather than one per message), and keep them until the commit: on
    PostgreSQL they stay locked against :func:`delete_unreferenced` (see above). Call inside the
    transaction that creates the rows referring to them."""
    pending = dict(items)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    # Bytes that a deleter we waited for deleted are stored again; a row we insert ourselves
    # is invisible to deleters until our commit, so a second round settles it in practice.
    for _attempt in range(3):
        shas = sorted(pending)
        with connection.cursor() as cursor:
            for start in range(0, len(shas), _BLOB_BATCH):
                batch = shas[start:start + _BLOB_BATCH]
                cursor.execute(
                    "INSERT INTO mailcore_blob (sha256, size, data, created) VALUES "
                    + ", ".join(["(%s, %s, %s, %s)"] * len(batch))
                    + " ON CONFLICT (sha256) DO NOTHING",
                    [v for sha in batch for v in (sha, len(pending[sha]), pending[sha], now)],
                )
        if connection.vendor != "postgresql":
            return
        held = _lock(shas, "FOR KEY SHARE")
        pending = {sha: raw for sha, raw in pending.items() if sha not in held}
        if not pending:
            return
    # A transient failure, as a lost lock would be: the doors answer "try again".
    raise OperationalError(f"blobs {sorted(pending)} deleted again and again while being stored")


def _lock(shas: list[str], mode: str) -> set[str]:
    """Lock the blob rows that exist among ``shas`` (sorted: one order for every writer) and
    return their ids. In READ COMMITTED a row deleted by a transaction we waited for is left
    out."""
    held: set[str] = set()
    with connection.cursor() as cursor:
        for start in range(0, len(shas), _BLOB_BATCH):
            batch = shas[start:start + _BLOB_BATCH]
            cursor.execute(
                f"SELECT sha256 FROM mailcore_blob WHERE sha256 IN"
                f" ({', '.join(['%s'] * len(batch))}) ORDER BY sha256 {mode}",
                batch,
            )
            held.update(row[0] for row in cursor.fetchall())
    return held


def load_blob(sha: str) -> bytes:
    return bytes(Blob.objects.values_list("data", flat=True).get(pk=sha))


def delete_unreferenced(shas: Iterable[str]) -> int:
    """Delete the given blobs that no message (in a folder or in the outbound queue) refers to
    any more. Call it after deleting the references, in the same transaction; on PostgreSQL it
    locks the blobs before looking for references (see above)."""
    shas = sorted(set(shas))
    if not shas:
        return 0
    if connection.vendor == "postgresql":
        shas = sorted(_lock(shas, "FOR UPDATE"))
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
