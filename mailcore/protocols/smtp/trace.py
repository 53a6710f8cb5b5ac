"""Trace headers (RFC 5321 §4.4): the Received field every SMTP server prepends, the
Return-Path field of final delivery (from :mod:`mailcore.mime.trace`, which the outbound
queue's local delivery writes too), and counting Received fields to catch loops.

Only bytes are prepended; the message received stays byte for byte as it was sent."""

import re
from email.utils import format_datetime

from django.utils import timezone

from mailcore.mime.trace import clean_address

# A header block ends at the first empty line; only Received fields there count. The search
# runs on the event loop, so it looks at the first MAX_HEAD octets only, with bytes.find (a
# regular expression over a 25 MiB message without an empty line took 0.1 s per 5 MiB, issue
# 12); more Received fields than the loop limit fit there many times over.
MAX_HEAD = 1024 * 1024
_RECEIVED = re.compile(rb"^received[ \t]*:", re.IGNORECASE | re.MULTILINE)
# What a client's HELO name may contribute to our header: printable ASCII without the
# characters that would end a comment or fold the field.
_UNSAFE = re.compile(r"[^\x21-\x27\x2a-\x7e]")
MAX_HELO_IN_HEADER = 255


def count_received(raw: bytes) -> int:
    """The number of Received fields in the message's top-level header block."""
    ends = [i for i in (raw.find(b"\n\n", 0, MAX_HEAD), raw.find(b"\n\r\n", 0, MAX_HEAD))
            if i >= 0]
    head = raw[: min(ends) if ends else MAX_HEAD]
    if b"eceived" not in head and b"ECEIVED" not in head:
        return 0
    return len(_RECEIVED.findall(head))


def with_protocol(*, esmtp: bool, tls: bool, auth: bool, utf8: bool) -> str:
    """The ``with`` keyword: RFC 3848 (ESMTP, ESMTPA, ESMTPS, ESMTPSA) and RFC 6531 §3.7.3
    (UTF8SMTP...) for a transaction that used SMTPUTF8."""
    if not esmtp:
        return "SMTP"
    base = "UTF8SMTP" if utf8 else "ESMTP"
    return base + ("S" if tls else "") + ("A" if auth else "")


def _clean(text: str | None) -> str:
    return _UNSAFE.sub("?", text or "")[:MAX_HELO_IN_HEADER] or "unknown"


def received_header(
    *,
    helo: str | None,
    peer_ip: str,
    hostname: str,
    protocol: str,
    queue_id: str,
    recipients: list[str],
    tls: str | None = None,
) -> bytes:
    """A Received field (RFC 5321 §4.4 "Time-stamp-line"), folded to short lines.

    The ``for`` clause names the recipient only when there is one, so that a message to many
    does not tell each of them who else got it."""
    ip = f"IPv6:{peer_ip}" if ":" in peer_ip else peer_ip
    lines = [f"Received: from {_clean(helo)} ([{ip}])"]
    if tls:
        lines.append(f"\t({_clean_comment(tls)})")
    clause = f"\tby {hostname} (Correio) with {protocol} id {queue_id}"
    if len(recipients) == 1:
        clause += f"\r\n\tfor <{clean_address(recipients[0])}>"
    lines.append(clause + ";")
    lines.append(f"\t{format_datetime(timezone.localtime())}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _clean_comment(text: str) -> str:
    """Printable ASCII for a comment; nested comments stay (RFC 5322 §3.2.2, ``(256/256
    bits)`` in the TLS details) when their parentheses balance, and a backslash, which would
    quote the next character, is replaced, as is every parenthesis of an unbalanced text."""
    text = re.sub(r"[^\x20-\x5b\x5d-\x7e]", "?", text)[:200]
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            break
    if depth != 0:
        text = text.replace("(", "?").replace(")", "?")
    return text


def tls_description(ssl_info: dict | None) -> str | None:
    """``using TLSv1.3 with cipher ...`` from the TLS transport's details, as Postfix writes it."""
    if not ssl_info:
        return None
    cipher = ssl_info.get("cipher")
    if not cipher:
        return None
    name, version, bits = cipher
    return f"using {version} with cipher {name} ({bits}/{bits} bits)"
