"""The spam score header our MX adds on top of a scanned message:
``X-Spam-Score: <score> / <reject threshold>`` (rspamd's score and its ``required_score``).

Sieve's ``spamtest`` (RFC 5235) may read it when no stored verdict is at hand, so it has to be
ours: the MX removes every incoming copy before adding its own (a sender cannot set it), and
only mail that came through the MX has it trusted at all."""

import re

NAME = "X-Spam-Score"
_NAME = NAME.lower().encode()
_VALUE = re.compile(r"\s*(-?\d{1,6}(?:\.\d{1,6})?)\s*(?:/\s*(\d{1,6}(?:\.\d{1,6})?))?\s*\Z")


def strip(raw: bytes) -> bytes:
    """``raw`` without any X-Spam-Score field (continuation lines too); otherwise byte for
    byte the same. Only the header block is looked at."""
    out = []
    position, end, keep = 0, len(raw), True
    while position < end:
        newline = raw.find(b"\n", position)
        stop = end if newline < 0 else newline + 1
        line = raw[position:stop]
        if line in (b"\r\n", b"\n"):
            out.append(raw[position:])
            return b"".join(out)
        if line[:1] not in (b" ", b"\t"):
            name, colon, _ = line.partition(b":")
            keep = not (colon and name.strip().lower() == _NAME)
        if keep:
            out.append(line)
        position = stop
    return b"".join(out)


def field(score: float, required: float) -> bytes:
    return f"{NAME}: {score:.2f} / {required:.2f}\r\n".encode()


def parse(value: str) -> tuple[float, float | None] | None:
    """(score, threshold) from our field's value; None when it is not one of ours."""
    match = _VALUE.match(value)
    if not match:
        return None
    return float(match.group(1)), float(match.group(2)) if match.group(2) else None
