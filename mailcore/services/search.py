"""Search: one interface over the full-text index and the cached message columns, for every door
(the webmail's search box, IMAP SEARCH TEXT/BODY/FROM..., RFC 3501 §6.4.4).

The index holds one document per stored raw message (from, to/cc, subject, body text and
attachment names), written at delivery by :func:`index_blob`. Text is normalised the same way
for documents and queries (lower case, diacritics removed, split into letters-and-digits
words), so that SQLite FTS5 and PostgreSQL full-text search (the ``simple`` configuration, with
weights A–D for the four fields) give the same answers. Every term matches as a prefix.

:func:`parse_query` reads the webmail's Gmail-style syntax (``from:``, ``to:``, ``subject:``,
``has:attachment``, ``is:unread``, ``is:flagged``, ``before:``, ``after:``, ``larger:``,
``smaller:``, ``in:``, ``"phrases"``, ``-negation``) into a :class:`SearchQuery`, and
:func:`search_messages` runs one against a mailbox, newest first. IMAP can build a
``SearchQuery`` directly, or combine :func:`text_q` with its own filters.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time

from django.db import connection, transaction
from django.db.models import BooleanField, Exists, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.db.models.lookups import In
from django.utils import timezone

from mailcore.mime.parse import ParsedMessage, html_to_text, parse_message, part_filename, part_text
from mailcore.mime.structure import iter_parts
from mailcore.models import Blob, Folder, FolderRole, Mailbox, Message, SearchDocument

# Bounded work per message: a 25 MiB message must not become a 25 MiB index document.
MAX_PART_BYTES = 512 * 1024
MAX_BODY_CHARS = 64 * 1024
MAX_TERMS = 32
FIELDS = ("from_text", "to_text", "subject", "body")
# PostgreSQL tsvector weights stand for the fields (see the migration).
PG_WEIGHTS = {"from_text": "A", "to_text": "B", "subject": "C", "body": "D"}
FTS_TABLE = "mailcore_search_fts"

_WORD = re.compile(r"[^\W_]+")
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([kmg]?)b?$", re.I)
_TOKEN = re.compile(r'(-?)(?:(\w+):)?(?:"([^"]*)"?|(\S+))')


@functools.cache
def _strip_marks_table() -> dict[int, None]:
    """Every combining character, for str.translate (built once, on first non-ASCII text)."""
    return {cp: None for cp in range(0x300, 0x110000) if unicodedata.combining(chr(cp))}


def normalize_words(text: str) -> list[str]:
    """Lower-case words of letters and digits with diacritics removed ("Résumé" → "resume")."""
    text = text.lower()
    if not text.isascii():
        # Runs on every delivery: translate() strips the marks in C, not char by char in Python.
        text = unicodedata.normalize("NFKD", text).translate(_strip_marks_table())
    return _WORD.findall(text)


def normalize_text(text: str) -> str:
    return " ".join(normalize_words(text))


# --- Indexing -------------------------------------------------------------------------------


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


def index_blob(sha: str, raw: bytes, parsed: ParsedMessage | None = None) -> None:
    """Index a stored raw message once (a no-op when already indexed). Delivery and append call
    it inside the transaction that stores the blob, so a message is searchable as it arrives."""
    if parsed is None:
        parsed = parse_message(raw)
    SearchDocument.objects.bulk_create(
        [SearchDocument(blob_id=sha, **document_fields(raw, parsed))], ignore_conflicts=True
    )


def index_blobs(items) -> None:
    """Index several stored messages at once: ``items`` are ``(sha, raw, parsed)``.

    Plain SQL: this runs on every delivery, where the ORM's bulk_create costs more than the
    insert (the FTS5 triggers or the generated tsvector do the indexing)."""
    rows = [(sha, document_fields(raw, parsed)) for sha, raw, parsed in items]
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
            for sha in shas:
                index_blob(sha, bytes(Blob.objects.values_list("data", flat=True).get(pk=sha)))
        done += len(shas)


# --- Full-text matching -----------------------------------------------------------------------


@dataclass
class TextTerm:
    """Words that must appear together in order (one word, or a quoted phrase), in one field
    (``None``: any field); ``negated`` excludes matching messages."""

    words: list[str]
    field: str | None = None
    negated: bool = False


def _fts5_expr(terms: list[TextTerm]) -> str:
    parts = []
    for term in terms:
        phrase = " + ".join(f'"{word}"' for word in term.words) + "*"
        expr = f"{term.field} : ({phrase})" if term.field else f"({phrase})"
        parts.append(f"NOT {expr}" if term.negated else expr)
    # FTS5 NOT is binary ("a NOT b"), so positive terms come first.
    positive = [p for p in parts if not p.startswith("NOT ")]
    negative = [p for p in parts if p.startswith("NOT ")]
    return " AND ".join(positive) + ("" if not negative else " " + " ".join(negative))


def _pg_tsquery(terms: list[TextTerm]) -> str:
    parts = []
    for term in terms:
        weight = PG_WEIGHTS[term.field] if term.field else ""
        phrase = " <-> ".join(f"'{word}':*{weight}" for word in term.words)
        parts.append(f"!({phrase})" if term.negated else f"({phrase})")
    return " & ".join(parts)


def _matching_blobs(terms: list[TextTerm]) -> RawSQL:
    if connection.vendor == "postgresql":
        sql = (
            "SELECT blob_id FROM mailcore_searchdocument "
            "WHERE tsv @@ to_tsquery('simple', %s)"
        )
        return RawSQL(sql, [_pg_tsquery(terms)])
    sql = (
        f"SELECT d.blob_id FROM {FTS_TABLE} f JOIN mailcore_searchdocument d ON d.id = f.rowid "
        f"WHERE {FTS_TABLE} MATCH %s"
    )
    return RawSQL(sql, [_fts5_expr(terms)])


def text_q(terms: list[TextTerm]) -> Q:
    """A filter on ``Message`` keeping messages whose indexed text matches every term.

    Terms need at least one positive term to use the index; a query of negated terms only
    is answered by excluding their matches."""
    terms = [t for t in terms if t.words][:MAX_TERMS]
    if not terms:
        return Q()
    positive = [t for t in terms if not t.negated]
    if positive:
        return Q(blob_id__in=_matching_blobs(terms))
    flipped = [TextTerm(t.words, t.field, False) for t in terms]
    q = Q()
    for term in flipped:
        q &= ~Q(blob_id__in=_matching_blobs([term]))
    return q


# --- Query plans for a page of newest matches ----------------------------------------------------
#
# The webmail wants the newest 50 matches, and a word may match a handful of messages or nearly
# all of them. Two plans, each fast on one side:
# - "few": the matching documents are few, so fetch their messages in this mailbox by blob (an
#   eager list of ids, at most a few thousand), and let the page sort that list;
# - "walk": the matches are many, so walk the mailbox's messages newest first (the date index)
#   and test each one, stopping once the page is full: some hundred rows for a common word.
# Where the index joins a message is the blob's document id: the FTS5 rowid on SQLite, the
# document's tsvector on PostgreSQL. SQLite tests membership in the set of matching rowids
# (built once per query; probing FTS5 row by row would merge a prefix's doclists every time),
# PostgreSQL probes each walked message's tsvector (a GIN index answers a common prefix only
# by building a bitmap of all its rows).

# SQLite: fewer matching documents than this (or 2% of all documents, if more) is "few".
FEW_DOCUMENTS = 2000
# PostgreSQL: of the newest SAMPLE_ROWS messages in scope, at least SAMPLE_HITS matching means
# the walk fills a page within about SAMPLE_ROWS * 51 / SAMPLE_HITS rows (some 10 us each):
# "walk". Else the GIN index finds the matches, at some 1.5 us per document holding the words
# (a phrase or a field is checked on each), which is bounded by the number of documents.
SAMPLE_ROWS = 400
SAMPLE_HITS = 2
# More messages than this holding the few documents (copies in many folders): walk instead.
MAX_EAGER_IDS = 10000


def _doc_id_of_message() -> Coalesce:
    """The message's document id, 0 for a message not indexed yet (no FTS5 rowid is 0)."""
    doc = SearchDocument.objects.filter(blob_id=OuterRef("blob_id")).values("id")[:1]
    return Coalesce(Subquery(doc), Value(0))


def _pg_probe(terms: list[TextTerm]) -> RawSQL:
    """The tsvector test for one document at a time. ``ts_match_vq`` is the function behind
    ``@@``: written so, the planner cannot choose the GIN index, whose prefix and weight
    (field) matches it underestimates, rechecking tens of thousands of rows."""
    return RawSQL("ts_match_vq(tsv, to_tsquery('simple', %s))", [_pg_tsquery(terms)],
                  output_field=BooleanField())


def _walk_q(terms: list[TextTerm]) -> Q:
    """``terms`` (at least one positive) tested on each message the page walks through."""
    if connection.vendor == "postgresql":
        docs = SearchDocument.objects.filter(blob_id=OuterRef("blob_id")).filter(_pg_probe(terms))
        return Q(Exists(docs))
    rowids = RawSQL(f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s",
                    [_fts5_expr(terms)])
    return Q(In(_doc_id_of_message(), rowids))


def _few_matches(
    terms: list[TextTerm], scope: QuerySet[Message], mailbox: Mailbox
) -> list[tuple[int, int]] | None:
    """(id, folder id) of the mailbox's messages matching ``terms`` when the matches are few,
    else None (then the page walks the mailbox)."""
    if connection.vendor == "postgresql":
        # Whether a walk fills a page soon: test the newest messages in scope.
        sample = scope.order_by("-internal_date", "-id").values("blob_id")[:SAMPLE_ROWS]
        hits = SearchDocument.objects.filter(blob_id__in=sample).filter(_pg_probe(terms))
        if hits.count() >= SAMPLE_HITS:
            return None
        sql = (
            "SELECT m.id, m.folder_id FROM mailcore_searchdocument d JOIN mailcore_message m "
            "ON m.blob_id = d.blob_id WHERE d.tsv @@ to_tsquery('simple', %s) "
            "AND m.mailbox_id = %s LIMIT %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [_pg_tsquery(terms), mailbox.pk, MAX_EAGER_IDS + 1])
            rows = cursor.fetchall()
        return rows if len(rows) <= MAX_EAGER_IDS else None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT max(rowid) FROM {FTS_TABLE}")
        limit = max(FEW_DOCUMENTS, (cursor.fetchone()[0] or 0) // 50)
        cursor.execute(
            f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s LIMIT %s",
            [_fts5_expr(terms), limit],
        )
        docs = [row[0] for row in cursor.fetchall()]
        if len(docs) >= limit:
            return None
        rows = []
        for start in range(0, len(docs), 900):
            chunk = docs[start : start + 900]
            # CROSS JOIN fixes the join order, and the unary + keeps SQLite from using the
            # mailbox's date index instead of the blob's (it would walk the whole mailbox).
            cursor.execute(
                "SELECT m.id, m.folder_id FROM mailcore_searchdocument d CROSS JOIN "
                "mailcore_message m ON m.blob_id = d.blob_id "
                f"WHERE d.id IN ({', '.join(['%s'] * len(chunk))}) AND +m.mailbox_id = %s",
                [*chunk, mailbox.pk],
            )
            rows.extend(cursor.fetchall())
    return rows if len(rows) <= MAX_EAGER_IDS else None


def _text_filter(
    qs: QuerySet[Message], terms: list[TextTerm], mailbox: Mailbox, folder: Folder | None,
    hidden: list[int],
) -> QuerySet[Message]:
    """``qs`` (the mailbox's messages in scope) narrowed to those matching ``terms``, by the
    plan that suits how many documents match (see above)."""
    terms = [t for t in terms if t.words][:MAX_TERMS]
    if not terms:
        return qs
    if all(t.negated for t in terms):
        # Negated words only: most messages match; walk, excluding each word's matches
        # (a message not indexed yet has no words, so it is kept, as text_q does).
        for term in terms:
            qs = qs.exclude(_walk_q([TextTerm(term.words, term.field, False)]))
        return qs
    few = _few_matches(terms, qs, mailbox)
    if few is not None:
        # Only the id list: a mailbox or folder condition would tempt SQLite to walk the date
        # index testing each row against the list. The ids are of this mailbox.
        return Message.objects.filter(pk__in=[
            pk for pk, folder_id in few
            if (folder_id == folder.pk if folder is not None else folder_id not in hidden)
        ])
    return qs.filter(_walk_q(terms))


# --- Queries ----------------------------------------------------------------------------------


@dataclass
class SearchQuery:
    terms: list[TextTerm] = field(default_factory=list)
    has_attachment: bool | None = None
    unread: bool | None = None
    flagged: bool | None = None
    after: date | None = None  # internal date on or after
    before: date | None = None  # internal date before
    larger: int | None = None
    smaller: int | None = None
    folder: str | None = None  # ``in:`` — a folder name or role; "anywhere" means all folders

    @property
    def is_empty(self) -> bool:
        return not (
            self.terms
            or self.folder
            or any(
                v is not None
                for v in (self.has_attachment, self.unread, self.flagged, self.after,
                          self.before, self.larger, self.smaller)
            )
        )


_FIELD_OPERATORS = {"from": "from_text", "to": "to_text", "cc": "to_text", "subject": "subject",
                    "body": "body"}


def _parse_date(value: str) -> date | None:
    for fmt in ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"):
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    return None


def _parse_size(value: str) -> int | None:
    m = _SIZE.match(value.strip())
    if not m:
        return None
    scale = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)


def parse_query(text: str) -> SearchQuery:
    """Read a Gmail-style query. Unknown operators and bad values count as plain words, so any
    input gives a query and never an error."""
    query = SearchQuery()
    for m in _TOKEN.finditer(text[:1000]):
        negated = m.group(1) == "-"
        operator = (m.group(2) or "").lower()
        value = m.group(3) if m.group(3) is not None else (m.group(4) or "")
        whole = m.group(0).lstrip("-")
        if operator in _FIELD_OPERATORS:
            query.terms.append(TextTerm(normalize_words(value), _FIELD_OPERATORS[operator],
                                        negated))
            continue
        handled = True
        low = value.lower()
        if operator == "has" and low in ("attachment", "attachments"):
            query.has_attachment = not negated
        elif operator == "is" and low in ("unread", "read"):
            query.unread = (low == "unread") != negated
        elif operator == "is" and low in ("flagged", "starred", "unflagged"):
            query.flagged = (low != "unflagged") != negated
        elif operator in ("before", "older") and _parse_date(value):
            query.before = _parse_date(value)
        elif operator in ("after", "newer") and _parse_date(value):
            query.after = _parse_date(value)
        elif operator in ("larger", "size") and _parse_size(value) is not None:
            query.larger = _parse_size(value)
        elif operator == "smaller" and _parse_size(value) is not None:
            query.smaller = _parse_size(value)
        elif operator == "in" and value:
            query.folder = value
        else:
            handled = False
        if not handled:
            words = normalize_words(whole if operator else value)
            if words:
                query.terms.append(TextTerm(words, None, negated))
    return query


def resolve_folder(mailbox: Mailbox, name: str) -> Folder | None:
    """The folder ``in:`` names (by name, case-insensitively, or by role), or None for all
    folders (``in:anywhere``, ``in:all`` or an unknown name)."""
    low = name.lower()
    if low in ("anywhere", "all", "*"):
        return None
    folders = list(Folder.objects.filter(mailbox=mailbox))
    for folder in folders:
        if folder.name.lower() == low:
            return folder
    for folder in folders:
        if folder.role and (folder.role == low or folder.get_role_display().lower() == low):
            return folder
    return None


def _local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def search_messages(
    mailbox: Mailbox, query: SearchQuery, folder: Folder | None = None
) -> QuerySet[Message]:
    """Messages of the mailbox matching the query, newest first (by internal date, then id).

    ``folder`` limits the search to one folder unless the query says ``in:``. Callers slice
    the queryset (with a keyset condition for the next pages). Choosing its plan (see "Query
    plans" above) runs one or two small queries now; the page itself runs when sliced."""
    if query.folder:
        folder = resolve_folder(mailbox, query.folder)
        if folder is None and query.folder.lower() not in ("anywhere", "all", "*"):
            return Message.objects.none()
    qs = Message.objects.filter(mailbox=mailbox)
    hidden: list[int] = []
    if folder is not None:
        qs = qs.filter(folder=folder)
    elif not query.folder:
        # All folders means the mail a person keeps: not the Trash or Junk (as Gmail does).
        hidden = list(
            Folder.objects.filter(
                mailbox=mailbox, role__in=[FolderRole.TRASH, FolderRole.JUNK]
            ).values_list("pk", flat=True)
        )
        qs = qs.exclude(folder__in=hidden)
    if query.terms:
        qs = _text_filter(qs, query.terms, mailbox, folder, hidden)
    if query.has_attachment is not None:
        qs = qs.filter(has_attachments=query.has_attachment)
    if query.unread is not None:
        qs = qs.filter(seen=not query.unread)
    if query.flagged is not None:
        qs = qs.filter(flagged=query.flagged)
    if query.after is not None:
        qs = qs.filter(internal_date__gte=_local_midnight(query.after))
    if query.before is not None:
        qs = qs.filter(internal_date__lt=_local_midnight(query.before))
    if query.larger is not None:
        qs = qs.filter(size__gt=query.larger)
    if query.smaller is not None:
        qs = qs.filter(size__lt=query.smaller)
    return qs.order_by("-internal_date", "-id")


__all__ = [
    "SearchQuery",
    "TextTerm",
    "index_blob",
    "index_missing",
    "parse_query",
    "search_messages",
    "text_q",
]
