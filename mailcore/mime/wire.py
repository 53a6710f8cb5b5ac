"""Messages in the form line protocols transmit them: CRLF line ends (RFC 5322 §2.1) and, for
the dot-terminated multi-line responses of POP3 (RFC 1939 §3) and SMTP DATA (RFC 5321 §4.5.2),
byte-stuffed lines starting with ``.``. Imports nothing from Django."""

import re

_BARE_LF = re.compile(rb"(?<!\r)\n")


def to_crlf(raw: bytes) -> bytes:
    """The message with every bare LF turned into CRLF and its last line ended by CRLF.

    Bare CRs are left as they are: they end no line. An empty message stays empty."""
    if raw.count(b"\n") != raw.count(b"\r\n"):
        raw = _BARE_LF.sub(b"\r\n", raw)
    if raw and not raw.endswith(b"\r\n"):
        raw += b"\r\n"
    return raw


def crlf_size(raw: bytes) -> int:
    """``len(to_crlf(raw))`` without building it."""
    if not raw:
        return 0
    size = len(raw) + raw.count(b"\n") - raw.count(b"\r\n")
    if not raw.endswith(b"\n"):
        size += 2
    return size


def dot_stuff(data: bytes) -> bytes:
    """Double the ``.`` that starts a line, for a dot-terminated multi-line block. ``data`` must
    have CRLF line ends (see :func:`to_crlf`), so every LF starts a line."""
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\n.", b"\n..")
