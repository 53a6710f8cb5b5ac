"""The search index: one document per stored raw message (from, to/cc, subject, body text and
attachment names, normalised by :mod:`.text`), written by delivery in the transaction that
stores the bytes, so a message is searchable as it arrives. Bounded work per message: a 25 MiB
message does not become a 25 MiB document."""

from django.db import connection, transaction

from mailcore.mime.parse import ParsedMessage, html_to_text, parse_message, part_filename, part_text
from mailcore.mime.structure import iter_parts
from mailcore.models import Blob, SearchDocument
from mailcore.services.search.text import normalize_text

MAX_PART_BYTES = 512 * 1024
MAX_BODY_CHARS = 64 * 1024
FIELDS = ("from_text", "to_text", "subject", "body")


def _addresses(pairs) -> str:
    return " ".join(f"{name} {addr}" for name, addr in pairs)


def _body_text(raw: bytes, structure: dict) -> str:
    chunks: list[str] = []
    total = 0
    for part in iter_parts(structure):
        if total >= MAX_BODY_CHARS:
            break
        name = part_filename(part)
        if name:
            chunks.append(name)
        if part["type"] != "text" or part["subtype"] not in ("plain", "html"):
            continue
        if part["body_end"] - part["body_start"] > MAX_PART_BYTES:
            part = dict(part, body_end=part["body_start"] + MAX_PART_BYTES)
        text = part_text(raw, part)
        if part["subtype"] == "html":
            text = html_to_text(text)
        chunks.append(text[: MAX_BODY_CHARS - total])
        total += len(chunks[-1])
    return "\n".join(chunks)


def document_fields(raw: bytes, parsed: ParsedMessage) -> dict[str, str]:
    return {
        "from_text": normalize_text(_addresses(parsed.from_ + parsed.sender)),
        "to_text": normalize_text(_addresses(parsed.to + parsed.cc + parsed.bcc)),
        "subject": normalize_text(parsed.subject),
        "body": normalize_text(_body_text(raw, parsed.structure)),
    }


def index_blobs(items) -> None:
    """Index stored messages (a no-op for those already indexed): ``items`` are ``(sha, raw,
    parsed)``. Delivery calls it inside the transaction that stores the bytes.

    Plain SQL: this runs on every delivery, where the ORM's bulk_create costs more than the
    insert (the FTS5 triggers or the generated tsvector do the indexing)."""
    insert_documents([(sha, document_fields(raw, parsed)) for sha, raw, parsed in items])


def insert_documents(rows: list[tuple[str, dict[str, str]]]) -> None:
    """Store documents made by :func:`document_fields` beforehand (the IMAP APPEND group commit
    makes them in each session's thread, outside the commit all sessions share)."""
    if not rows:
        return
    table = SearchDocument._meta.db_table
    columns = ", ".join(FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (blob_id, {columns}) VALUES "
            + ", ".join([f"(%s, {', '.join(['%s'] * len(FIELDS))})"] * len(rows))
            + " ON CONFLICT (blob_id) DO NOTHING",
            [value for sha, doc in rows for value in (sha, *(doc[f] for f in FIELDS))],
        )


def index_missing(batch: int = 500) -> int:
    """Index stored messages that have no document yet (messages stored before the index
    existed); returns how many were indexed. Run by ``manage.py searchindex``."""
    done = 0
    while True:
        shas = list(
            Blob.objects.filter(search_document__isnull=True).values_list("pk", flat=True)[:batch]
        )
        if not shas:
            return done
        with transaction.atomic():
            for sha in shas:  # one at a time: a blob may be 25 MiB
                raw = bytes(Blob.objects.values_list("data", flat=True).get(pk=sha))
                index_blobs([(sha, raw, parse_message(raw))])
        done += len(shas)
