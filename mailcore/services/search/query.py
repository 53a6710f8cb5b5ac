"""The webmail's query language, Gmail-style: ``from:``, ``to:``, ``cc:``, ``subject:``,
``body:``, ``has:attachment``, ``is:unread``, ``is:flagged``, ``before:``, ``after:``,
``larger:``, ``smaller:``, ``in:``, ``"phrases"`` and ``-negation``. Parsing never fails: what
is not understood is searched as words. Pure: no database."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from mailcore.services.search.text import normalize_words

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([kmg]?)b?$", re.I)
_TOKEN = re.compile(r'(-?)(?:(\w+):)?(?:"([^"]*)"?|(\S+))')


@dataclass
class TextTerm:
    """Words that must appear together in order (one word, or a quoted phrase), in one field
    (``None``: any field); ``negated`` excludes matching messages."""

    words: list[str]
    field: str | None = None
    negated: bool = False


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
    # What the person should be told: an operator given no value is ignored, not searched as
    # a word (``from:`` alone used to match nearly every message).
    problems: list[str] = field(default_factory=list)

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
# Every operator with an example value, for the message when one is given no value.
_EXAMPLES = {"from": "alice", "to": "alice", "cc": "alice", "subject": "invoice", "body": "invoice",
             "has": "attachment", "is": "unread", "before": "2024-01-31", "older": "2024-01-31",
             "after": "2024-01-31", "newer": "2024-01-31", "larger": "5M", "size": "5M",
             "smaller": "100K", "in": "Sent"}


def _no_value(operator: str) -> str:
    return (f"“{operator}:” needs something right after the colon, as in "
            f"{operator}:{_EXAMPLES[operator]}; it was left out of the search.")


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
        if not operator and value.endswith(":") and value[:-1].lower() in _EXAMPLES:
            # "from:" at the end or followed by a space: the regex read it as a plain word.
            query.problems.append(_no_value(value[:-1].lower()))
            continue
        if operator in _FIELD_OPERATORS:
            if not normalize_words(value):
                query.problems.append(_no_value(operator))
                continue
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
