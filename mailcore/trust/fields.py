"""Dropping header fields from a raw message, byte for byte otherwise: the one loop behind
removing forged Authentication-Results (authresults.py) and X-Spam-Score (spamheader.py)."""

from collections.abc import Callable


def drop_fields(raw: bytes, drop: Callable[[bytes, int], bool]) -> bytes:
    """``raw`` without the top-level header fields for which ``drop(name, start)`` is true
    (``name`` lower case, ``start`` the field's offset in ``raw``), continuation lines included.
    Only the header block is looked at; the rest is kept as it is."""
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
            keep = not (colon and drop(name.strip().lower(), position))
        if keep:
            out.append(line)
        position = stop
    return b"".join(out)
