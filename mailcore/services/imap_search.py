"""Message search (IMAP SEARCH, RFC 3501 §6.4.4): a tree of search keys evaluated against a
folder, as database filters wherever the cached columns allow and in Python otherwise.

A key is a tuple:
``("all",)``, ``("and", [keys])``, ``("or", a, b)``, ``("not", a)``,
``("flag", field, bool)`` (field is seen/answered/flagged/deleted/draft),
``("keyword", name, bool)``, ``("header", name, text)``, ``("body", text)``, ``("text", text)``,
``("internal", op, date)`` and ``("sent", op, date)`` with op before/on/since,
``("larger", n)``, ``("smaller", n)``, ``("uids", UidRanges)``, ``("modseq", n)`` (RFC 7162).

Matching is case-insensitive substring matching (§6.4.4). Subject, From, To, Cc, Message-ID,
In-Reply-To and References are matched against the columns decoded at delivery (so RFC 2047
encoded words match their text); other headers, BODY and TEXT read the stored bytes, in chunks,
only for the messages the other keys leave, and decode transfer encodings and charsets only for
messages that have them."""

from datetime import UTC, datetime, time, timedelta

from django.db import connection
from django.db.models import Q

from mailcore.mime.headers import decode_header_value, find_header_end, split_header_lines
from mailcore.mime.parse import html_to_text, part_text
from mailcore.mime.structure import iter_parts
from mailcore.models import Message
from mailcore.services.common import MAX_RANGES_IN_QUERY, UidRanges, uid_q

BLOB_CHUNK = 200
_HEADER_COLUMNS = {
    "subject": ("subject",),
    "from": ("from_name", "from_addr"),
    "to": ("to_addrs",),
    "cc": ("cc_addrs",),
    "message-id": ("message_id",),
    "in-reply-to": ("in_reply_to",),
    "references": ("references",),
}
_ENCODED_MARKERS = (b"base64", b"quoted-printable", b"=?", b"charset=")


def _day_start(day) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _date_q(column: str, op: str, day) -> Q:
    # Dates compare without time and timezone (§6.4.4); days are taken in UTC.
    start = _day_start(day)
    if op == "before":
        return Q(**{f"{column}__lt": start})
    if op == "since":
        return Q(**{f"{column}__gte": start})
    return Q(**{f"{column}__gte": start, f"{column}__lt": start + timedelta(days=1)})


def _as_q(key: tuple) -> Q | None:
    """The key as a database filter, or None when it needs Python."""
    kind = key[0]
    if kind == "all":
        return Q()
    if kind == "flag":
        return Q(**{key[1]: key[2]})
    if kind == "keyword":
        if not connection.features.supports_json_field_contains:
            return None
        q = Q(keywords__contains=[key[1]])
        return q if key[2] else ~q
    if kind == "header":
        columns = _HEADER_COLUMNS.get(key[1])
        if columns is None:
            return None
        q = Q()
        for column in columns:
            q |= Q(**{f"{column}__icontains": key[2]})
        return q
    if kind in ("internal", "sent"):
        return _date_q("internal_date" if kind == "internal" else "date", key[1], key[2])
    if kind == "modseq":
        return Q(modseq__gte=key[1])  # RFC 7162 §3.1.5
    if kind == "larger":
        return Q(size__gt=key[1])
    if kind == "smaller":
        return Q(size__lt=key[1])
    if kind == "uids":
        if len(key[1].ranges) > MAX_RANGES_IN_QUERY:
            return None
        return uid_q(key[1])[0]
    if kind == "and":
        q = Q()
        for child in key[1]:
            child_q = _as_q(child)
            if child_q is None:
                return None
            q &= child_q
        return q
    if kind == "or":
        left, right = _as_q(key[1]), _as_q(key[2])
        if left is None or right is None:
            return None
        return left | right
    if kind == "not":
        inner = _as_q(key[1])
        return None if inner is None else ~inner
    return None


class _Search:
    def __init__(self, folder_id: int, universe: list[int]):
        self.folder_id = folder_id
        self.universe = universe

    def query_uids(self, q: Q, candidates: set[int]) -> set[int]:
        if not candidates:
            return set()
        rows = Message.objects.filter(
            q, folder_id=self.folder_id, uid__gte=min(candidates), uid__lte=max(candidates)
        ).values_list("uid", flat=True)
        return {uid for uid in rows if uid in candidates}

    def evaluate(self, key: tuple, candidates: set[int]) -> set[int]:
        if not candidates:
            return set()
        q = _as_q(key)
        if q is not None:
            return self.query_uids(q, candidates)
        kind = key[0]
        if kind == "and":
            sql = [c for c in key[1] if _as_q(c) is not None]
            rest = [c for c in key[1] if _as_q(c) is None]
            if sql:
                q = Q()
                for child in sql:
                    q &= _as_q(child)
                candidates = self.query_uids(q, candidates)
            for child in rest:
                candidates = self.evaluate(child, candidates)
            return candidates
        if kind == "or":
            left = self.evaluate(key[1], candidates)
            return left | self.evaluate(key[2], candidates - left)
        if kind == "not":
            return candidates - self.evaluate(key[1], candidates)
        if kind == "uids":
            return {uid for uid in candidates if uid in key[1]}
        if kind == "keyword":
            rows = Message.objects.filter(
                folder_id=self.folder_id, uid__gte=min(candidates), uid__lte=max(candidates)
            ).values_list("uid", "keywords")
            return {
                uid for uid, keywords in rows
                if uid in candidates and ((key[1] in (keywords or ())) == key[2])
            }
        if kind in ("header", "body", "text"):
            return self.scan_blobs(key, candidates)
        raise ValueError(f"unknown search key {kind!r}")

    def scan_blobs(self, key: tuple, candidates: set[int]) -> set[int]:
        kind = key[0]
        needle = key[-1].casefold()
        needle_bytes = needle.encode("utf-8")
        found: set[int] = set()
        ordered = sorted(candidates)
        for i in range(0, len(ordered), BLOB_CHUNK):
            chunk = ordered[i : i + BLOB_CHUNK]
            rows = Message.objects.filter(
                folder_id=self.folder_id, uid__gte=chunk[0], uid__lte=chunk[-1]
            ).values_list("uid", "blob__data")
            slow: list[tuple[int, bytes]] = []
            for uid, data in rows:
                if uid not in candidates:
                    continue
                raw = bytes(data)
                if kind == "header":
                    if _header_matches(raw, key[1], needle):
                        found.add(uid)
                    continue
                header_end, body_start = find_header_end(raw, 0, len(raw))
                region = raw if kind == "text" else raw[body_start:]
                lowered = region.lower()
                if not needle or needle_bytes in lowered:
                    found.add(uid)
                elif any(marker in lowered for marker in _ENCODED_MARKERS) or not region.isascii():
                    slow.append((uid, raw))
            if slow:
                structures = dict(
                    Message.objects.filter(
                        folder_id=self.folder_id, uid__in=[uid for uid, _ in slow]
                    ).values_list("uid", "structure")
                )
                for uid, raw in slow:
                    if _decoded_matches(raw, structures.get(uid), kind == "text", needle):
                        found.add(uid)
        return found


def _header_matches(raw: bytes, name: str, needle: str) -> bool:
    header_end, _ = find_header_end(raw, 0, len(raw))
    for field, value in split_header_lines(raw[:header_end]):
        if field.lower() == name and needle in decode_header_value(value).casefold():
            return True
    return False


def _decoded_matches(raw: bytes, structure: dict | None, with_headers: bool, needle: str) -> bool:
    if structure is None:
        return False
    if with_headers:
        header_end, _ = find_header_end(raw, 0, len(raw))
        for _field, value in split_header_lines(raw[:header_end]):
            if needle in decode_header_value(value).casefold():
                return True
    for part in iter_parts(structure):
        if part["type"] != "text" or part["children"]:
            continue
        text = part_text(raw, part)
        if part["subtype"] == "html":
            text = html_to_text(text)
        if needle in text.casefold():
            return True
    return False


def search(folder_id: int, key: tuple, universe: list[int]) -> list[int]:
    """The UIDs among ``universe`` (the session's known UIDs) matching ``key``, ascending."""
    searcher = _Search(folder_id, universe)
    return sorted(searcher.evaluate(key, set(universe)))


__all__ = ["UidRanges", "search"]
