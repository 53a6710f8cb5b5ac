"""Builders of test messages: real RFC 5322 bytes made with the stdlib email package."""

import email.utils
from email.message import EmailMessage
from email.policy import SMTP

_counter = iter(range(1, 10**9))


def make_message(
    *,
    subject: str = "Hello",
    sender: str = "Alice Example <alice@remote.test>",
    to: str = "demo@example.test",
    body: str = "Hi there,\nthis is a test message.\n",
    html: str | None = None,
    attachments: list[tuple[str, bytes, str]] = (),
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    date: str | None = None,
    extra_headers: dict[str, str] | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = date or email.utils.formatdate(localtime=False)
    msg["Message-ID"] = message_id or f"<test-{next(_counter)}@remote.test>"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    for name, value in (extra_headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, data, mimetype in attachments:
        maintype, subtype = mimetype.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes(policy=SMTP)
