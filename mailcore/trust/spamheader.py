"""The spam score header our MX adds on top of a scanned message:
``X-Spam-Score: <score> / <reject threshold>`` (rspamd's score and its ``required_score``).

Sieve's ``spamtest`` (RFC 5235) may read it when no stored verdict is at hand, so it has to be
ours: the MX removes every incoming copy before adding its own (a sender cannot set it), and
only mail that came through the MX has it trusted at all."""

import re

from mailcore.trust.fields import drop_fields

NAME = "X-Spam-Score"
_NAME = NAME.lower().encode()
_VALUE = re.compile(r"\s*(-?\d{1,6}(?:\.\d{1,6})?)\s*(?:/\s*(\d{1,6}(?:\.\d{1,6})?))?\s*\Z")


def strip(raw: bytes) -> bytes:
    """``raw`` without any X-Spam-Score field (continuation lines too); otherwise byte for
    byte the same. Only the header block is looked at."""
    return drop_fields(raw, lambda name, _start: name == _NAME)


def field(score: float, required: float) -> bytes:
    return f"{NAME}: {score:.2f} / {required:.2f}\r\n".encode()


def parse(value: str) -> tuple[float, float | None] | None:
    """(score, threshold) from our field's value; None when it is not one of ours."""
    match = _VALUE.match(value)
    if not match:
        return None
    return float(match.group(1)), float(match.group(2)) if match.group(2) else None
