"""Picking single header fields out of a split header block (RFC 5322 §3.6: From, Subject and
Message-ID occur at most once; the first one counts). Imports nothing from Django."""


def first_header(headers: list[tuple[str, bytes]], name: str) -> bytes | None:
    """Value of the first header called ``name`` (ASCII, lowercase), or None."""
    for field, value in headers:
        if len(field) == len(name) and field.lower() == name:
            return value
    return None
