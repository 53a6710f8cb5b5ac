"""The SQL that narrows a mailbox's messages to those whose indexed text matches, per database:
SQLite FTS5 (the external-content table ``mailcore_search_fts``) and PostgreSQL full-text
search (a ``tsvector`` with weights A-D for the four fields, see the migration). Every term
matches as a prefix."""

from django.db import connection
from django.db.models import BooleanField, Exists, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.db.models.lookups import In

from mailcore.models import Folder, Mailbox, Message, SearchDocument
from mailcore.services.search.query import TextTerm

MAX_TERMS = 32
# PostgreSQL tsvector weights stand for the fields (see the migration).
PG_WEIGHTS = {"from_text": "A", "to_text": "B", "subject": "C", "body": "D"}
FTS_TABLE = "mailcore_search_fts"


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


def text_filter(
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
        # (a message not indexed yet has no words, so it is kept).
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
