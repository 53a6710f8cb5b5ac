"""Delivery status notifications: RFC 3464 (message/delivery-status) inside RFC 6522
(multipart/report), with the original headers (text/rfc822-headers, or message/global-headers
for an internationalized message, RFC 6533 §6). Status codes are RFC 3463 enhanced codes.

Imports nothing from Django. Every value from a remote server is flattened to one line of
printable ASCII so it can never add a header or a part.
"""

import email.utils
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from mailcore.mime.headers import find_header_end
from mailcore.mime.wire import has_eight_bit, normalize_line_ends

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]+")
MAX_DIAGNOSTIC = 500


@dataclass
class DsnRecipient:
    address: str
    action: str  # "failed" or "delayed" (RFC 3464 §2.3.3)
    status: str  # e.g. "5.1.1"
    remote_mta: str = ""
    diagnostic: str = ""  # the remote reply, "550 5.1.1 no such user"
    last_attempt: datetime | None = None
    will_retry_until: datetime | None = None


def one_line(text: str, limit: int = MAX_DIAGNOSTIC) -> str:
    return _UNPRINTABLE.sub(" ", text).strip()[:limit]


def status_from_reply(code: int | None, reply: str, default: str) -> str:
    """The enhanced status code of a reply (RFC 3463), else one derived from the basic code."""
    match = _ENHANCED.search(reply or "")
    if match and (code is None or str(code)[0] == match.group(1)):
        return ".".join(match.groups())
    if code and 400 <= code < 600:
        return f"{code // 100}.0.0"
    return default


def _date(when: datetime) -> str:
    return email.utils.format_datetime(when)


def build_dsn(
    *,
    reporting_mta: str,
    sender: str,
    original: bytes,
    arrival: datetime,
    recipients: list[DsnRecipient],
    now: datetime,
) -> bytes:
    """The bytes of a DSN to ``sender`` about ``recipients`` of the ``original`` message.

    Sent from the null sender ``<>`` by the caller (RFC 3464 §2, RFC 5321 §4.5.5); its own
    ``Auto-Submitted`` header keeps auto-responders quiet (RFC 3834 §5)."""
    delayed = all(r.action == "delayed" for r in recipients)
    boundary = f"=_correio_dsn_{secrets.token_hex(12)}"
    subject = (
        "Delayed Mail (still being retried)" if delayed else "Undelivered Mail Returned to Sender"
    )
    header_end, _ = find_header_end(original, 0, len(original))
    original_headers = normalize_line_ends(original[:header_end] or b"\r\n")
    international = has_eight_bit(original_headers) or any(
        has_eight_bit(r.address.encode("utf-8")) for r in recipients
    )
    headers_type = "message/global-headers" if international else "text/rfc822-headers"
    status_type = "message/global-delivery-status" if international else "message/delivery-status"

    lines = []
    if delayed:
        lines += [
            f"This is the mail system at {reporting_mta}.",
            "",
            "Your message could not be delivered yet to the recipients below. It will be",
            "retried; you do not need to send it again. You will be told if it fails for good.",
            "",
        ]
    else:
        lines += [
            f"This is the mail system at {reporting_mta}.",
            "",
            "Your message could not be delivered to the recipients below. This is a",
            "permanent error; the message was not delivered to them.",
            "",
        ]
    for r in recipients:
        lines.append(f"<{one_line(r.address)}>: {one_line(r.diagnostic) or r.status}")
        if r.remote_mta:
            lines.append(f"    (reported by {one_line(r.remote_mta)})")
    human = "\r\n".join(lines) + "\r\n"

    fields = [f"Reporting-MTA: dns; {reporting_mta}", f"Arrival-Date: {_date(arrival)}", ""]
    for r in recipients:
        fields.append(f"Final-Recipient: rfc822; {one_line(r.address)}")
        fields.append(f"Action: {r.action}")
        fields.append(f"Status: {r.status}")
        if r.remote_mta:
            fields.append(f"Remote-MTA: dns; {one_line(r.remote_mta, 253)}")
        if r.diagnostic:
            fields.append(f"Diagnostic-Code: smtp; {one_line(r.diagnostic)}")
        if r.last_attempt:
            fields.append(f"Last-Attempt-Date: {_date(r.last_attempt)}")
        if r.will_retry_until:
            fields.append(f"Will-Retry-Until: {_date(r.will_retry_until)}")
        fields.append("")
    status = "\r\n".join(fields)

    head = [
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>",
        f"To: <{one_line(sender)}>",
        f"Subject: {subject}",
        f"Date: {_date(now)}",
        f"Message-ID: <{secrets.token_hex(16)}@{reporting_mta}>",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status;\r\n boundary="{boundary}"',
        "",
        "This is a MIME-encapsulated message.",
        "",
        f"--{boundary}",
        "Content-Description: Notification",
        'Content-Type: text/plain; charset="us-ascii"',
        "",
        human,
        f"--{boundary}",
        "Content-Description: Delivery report",
        f"Content-Type: {status_type}",
        "",
        status,
        f"--{boundary}",
        "Content-Description: Undelivered Message Headers",
        f"Content-Type: {headers_type}",
        "",
        "",
    ]
    tail = f"\r\n--{boundary}--\r\n".encode("ascii")
    return "\r\n".join(head).encode("utf-8") + original_headers + tail
