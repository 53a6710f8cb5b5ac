"""Message search (IMAP SEARCH, RFC 3501 §6.4.4): a tree of search keys evaluated against a
folder, as database filters wherever the cached columns allow and in Python otherwise.

Keys are the typed values of :mod:`mailcore.services.imap_keys`; the session has already turned
message numbers and \\Recent into :class:`~mailcore.services.imap_keys.Uids`.

Matching is case-insensitive substring matching (§6.4.4). Subject, Message-ID, In-Reply-To and
References are matched against the columns decoded at delivery (so RFC 2047 encoded words match
their text); From, To, Cc and Bcc against the addresses of the stored ENVELOPE written as the
header reads (display names decoded, group names included, every address, not just the first);
other headers, BODY and TEXT read the stored bytes, in chunks, only for the messages the other
keys leave, and decode transfer encodings and charsets only for messages that have them.
HEADER <field> "" matches every message that has the field.

SENTBEFORE/SENTON/SENTSINCE compare the day written in the Date header, in the sender's own time
zone (§6.4.4 "disregarding time and timezone"): the UTC column narrows the candidates to those
within a day of the boundary, whose Date header is then read from the ENVELOPE."""

from datetime import UTC, date, datetime, time, timedelta
from email.utils import parsedate_to_datetime

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from mailcore.mime.headers import decode_header_value, find_header_end, split_header_lines
from mailcore.mime.parse import html_to_text, part_text
from mailcore.mime.structure import iter_parts
from mailcore.models import Message
from mailcore.services import imap_keys as k
from mailcore.services.common import MAX_RANGES_IN_QUERY, UidRanges, uid_q

BLOB_CHUNK = 200
_HEADER_COLUMNS = {
    "subject": ("subject",),
    "message-id": ("message_id",),
    "in-reply-to": ("in_reply_to",),
    "references": ("references",),
}
_ENCODED_MARKERS = (b"base64", b"quoted-printable", b"=?", b"charset=")
# Where From, To, Cc and Bcc are in the stored ENVELOPE (RFC 3501 §7.4.2).
_ENVELOPE_ADDRESSES = {"from": 2, "to": 5, "cc": 6, "bcc": 7}
# A Date header's day can differ from its UTC day by at most its zone offset; RFC 5322 zones
# are written +hhmm, so 100 hours bounds even nonsense ones.
_ZONE_SLACK = timedelta(hours=100)


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


def _as_q(key: k.SearchKey) -> Q | None:
    """The key as a database filter, or None when it needs Python."""
    match key:
        case k.All():
            return Q()
        case k.Flag(field, value):
            return Q(**{field: value})
        case k.Keyword(name, value):
            if not connection.features.supports_json_field_contains:
                return None
            q = Q(keywords__contains=[name])
            return q if value else ~q
        case k.Header(name, text):
            columns = _HEADER_COLUMNS.get(name)
            if columns is None or not text:
                # An empty text asks whether the field is present: the blobs know.
                return None
            q = Q()
            for column in columns:
                q |= Q(**{f"{column}__icontains": text})
            return q
        case k.DateKey("internal", op, day):
            return _date_q("internal_date", op, day)
        case k.ModSeq(modseq):
            return Q(modseq__gte=modseq)  # RFC 7162 §3.1.5
        case k.Larger(size):
            return Q(size__gt=size)
        case k.Smaller(size):
            return Q(size__lt=size)
        case k.Age(seconds, younger):
            cutoff = timezone.now() - timedelta(seconds=seconds)  # WITHIN, RFC 5032 §3
            return Q(internal_date__gt=cutoff) if younger else Q(internal_date__lte=cutoff)
        case k.Uids(ranges):
            if len(ranges.ranges) > MAX_RANGES_IN_QUERY:
                return None
            return uid_q(ranges)[0]
        case k.And(keys):
            q = Q()
            for child in keys:
                child_q = _as_q(child)
                if child_q is None:
                    return None
                q &= child_q
            return q
        case k.Or(left, right):
            left_q, right_q = _as_q(left), _as_q(right)
            if left_q is None or right_q is None:
                return None
            return left_q | right_q
        case k.Not(inner):
            inner_q = _as_q(inner)
            return None if inner_q is None else ~inner_q
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

    def evaluate(self, key: k.SearchKey, candidates: set[int]) -> set[int]:
        if not candidates:
            return set()
        q = _as_q(key)
        if q is not None:
            return self.query_uids(q, candidates)
        match key:
            case k.And(keys):
                sql = [c for c in keys if _as_q(c) is not None]
                rest = [c for c in keys if _as_q(c) is None]
                if sql:
                    q = Q()
                    for child in sql:
                        q &= _as_q(child)
                    candidates = self.query_uids(q, candidates)
                for child in rest:
                    candidates = self.evaluate(child, candidates)
                return candidates
            case k.Or(left, right):
                found = self.evaluate(left, candidates)
                return found | self.evaluate(right, candidates - found)
            case k.Not(inner):
                return candidates - self.evaluate(inner, candidates)
            case k.Uids(ranges):
                return {uid for uid in candidates if uid in ranges}
            case k.Keyword(name, value):
                rows = Message.objects.filter(
                    folder_id=self.folder_id, uid__gte=min(candidates), uid__lte=max(candidates)
                ).values_list("uid", "keywords")
                return {
                    uid for uid, keywords in rows
                    if uid in candidates and ((name in (keywords or ())) == value)
                }
            case k.Header(name, text) if text and name in _ENVELOPE_ADDRESSES:
                return self.scan_envelopes(_ENVELOPE_ADDRESSES[name], text.casefold(), candidates)
            case k.DateKey("sent", op, day):
                return self.sent_on_days(op, day, candidates)
            case k.Header() | k.Body() | k.Text():
                return self.scan_blobs(key, candidates)
        raise ValueError(f"search key {key!r} is not evaluated here")

    def envelopes(self, q: Q, candidates: set[int]):
        """(uid, envelope) of the candidates matching ``q``, read in chunks."""
        ordered = sorted(candidates)
        for i in range(0, len(ordered), BLOB_CHUNK * 10):
            chunk = ordered[i : i + BLOB_CHUNK * 10]
            rows = Message.objects.filter(
                q, folder_id=self.folder_id, uid__gte=chunk[0], uid__lte=chunk[-1]
            ).values_list("uid", "envelope")
            for uid, envelope in rows:
                if uid in candidates:
                    yield uid, envelope

    def scan_envelopes(self, index: int, needle: str, candidates: set[int]) -> set[int]:
        return {
            uid for uid, envelope in self.envelopes(Q(), candidates)
            if needle in _addresses_as_written(envelope[index]).casefold()
        }

    def sent_on_days(self, op: str, day: date, candidates: set[int]) -> set[int]:
        start = _day_start(day)
        low, high = start - _ZONE_SLACK, start + timedelta(days=1) + _ZONE_SLACK
        found: set[int] = set()
        if op == "before":
            found = self.query_uids(Q(date__lt=low), candidates)
        elif op == "since":
            found = self.query_uids(Q(date__gte=high), candidates)
        near = Q(date__gte=low, date__lt=high)
        for uid, envelope in self.envelopes(near, candidates - found):
            sent = _sent_day(envelope[0])
            if sent is not None and (
                (op == "before" and sent < day) or (op == "on" and sent == day)
                or (op == "since" and sent >= day)
            ):
                found.add(uid)
        return found

    def scan_blobs(self, key: k.Header | k.Body | k.Text, candidates: set[int]) -> set[int]:
        kind = {k.Header: "header", k.Text: "text"}.get(type(key), "body")
        needle = key.text.casefold()
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
                    if _header_matches(raw, key.name, needle):
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


def _addresses_as_written(addresses: list | None) -> str:
    """An ENVELOPE address list written back as a header reads: ``name <box@host>``, groups as
    ``group: ...;``, display names decoded (RFC 2047)."""
    written = []
    for name, _adl, mailbox, host in addresses or ():
        if host is not None:
            addr = f"{mailbox}@{host}" if host else (mailbox or "")
            shown = decode_header_value(name) if name else ""
            written.append(f"{shown} <{addr}>" if shown else addr)
        elif mailbox is not None:
            written.append(f"{decode_header_value(mailbox)}:")
        else:
            written.append(";")
    return ", ".join(written)


def _sent_day(value: str | None) -> date | None:
    """The day written in a Date header, in its own zone."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value.strip()).date()
    except Exception:  # email.utils raises ValueError, TypeError, OverflowError
        return None


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


def search(folder_id: int, key: k.SearchKey, universe: list[int]) -> list[int]:
    """The UIDs among ``universe`` (the session's known UIDs) matching ``key``, ascending."""
    searcher = _Search(folder_id, universe)
    return sorted(searcher.evaluate(key, set(universe)))


__all__ = ["UidRanges", "search"]
