"""The Return-Path trace field of final delivery (RFC 5321 §4.4), as bytes: written by the MX
listener when it stores a message and by the outbound queue when it delivers one to a local
mailbox (submission, webmail, DSNs), so that every stored message records its reverse-path,
``<>`` for a bounce.

Only bytes are prepended; the message itself stays byte for byte as it was received."""

_RETURN_PATH = b"return-path:"


def clean_address(address: str) -> str:
    """An address as it may appear in a trace field: printable, no angle brackets or line
    breaks, bounded. Addresses reached us through a command parser or the queue's checks;
    SMTPUTF8 ones stay UTF-8 (RFC 6532)."""
    return "".join(ch for ch in address if ch.isprintable() and ch not in "<>\r\n")[:320]


def return_path_header(mail_from: str) -> bytes:
    """RFC 5321 §4.4: final delivery records the reverse-path; ``<>`` for bounces."""
    return f"Return-Path: <{clean_address(mail_from)}>\r\n".encode()


def with_return_path(raw: bytes, mail_from: str) -> bytes:
    """``raw`` as finally delivered: with our Return-Path first, unless it already starts with
    one (the MX wrote it before handing an alias's remote part to the queue). Every door puts
    its own trace field first, so a Return-Path a client wrote is never first."""
    if raw[: len(_RETURN_PATH)].lower() == _RETURN_PATH:
        return raw
    return return_path_header(mail_from) + raw
