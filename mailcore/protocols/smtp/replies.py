"""The one table from errors to SMTP replies (RFC 5321 §4.2 codes, RFC 3463 enhanced codes).

Service errors and the listener's own refusals are exceptions; ``reply_for`` turns any of them
into the reply line. Anything not in the table is a local fault: the client gets a temporary
451 4.3.0 with no internals (RFC 5321 §4.2.5: it will retry), and the traceback goes to the log."""

import logging

from mailcore import metrics
from mailcore.exceptions import (
    AliasLoop,
    AuthFailed,
    AuthThrottled,
    DomainNotFound,
    HeaderSenderRefused,
    InvalidAddress,
    MailboxInactive,
    MailboxNotFound,
    MailError,
    MessageTooLarge,
    QuotaExceeded,
    RejectedByFilter,
    RelayDenied,
    SenderNotOwned,
    UnknownRecipient,
)

logger = logging.getLogger("correio.smtp")


class TooManyRecipients(MailError):
    message = "too many recipients"


class MailLoop(MailError):
    message = "too many Received headers"


TEMPORARY_FAILURE = "451 4.3.0 Error: local error in processing, try again later"

REPLIES: dict[type[BaseException], str] = {
    UnknownRecipient: "550 5.1.1 Error: recipient address rejected: user unknown",
    MailboxNotFound: "550 5.1.1 Error: recipient address rejected: user unknown",
    DomainNotFound: "554 5.7.1 Error: relay access denied",
    RelayDenied: "554 5.7.1 Error: relay access denied",
    MailboxInactive: "550 5.2.1 Error: mailbox disabled",
    QuotaExceeded: "452 4.2.2 Error: mailbox full, try again later",
    AliasLoop: "554 5.4.6 Error: alias expansion loops",
    MailLoop: "554 5.4.6 Error: too many Received headers, mail loop",
    MessageTooLarge: "552 5.3.4 Error: message too big",
    TooManyRecipients: "452 4.5.3 Error: too many recipients",
    AuthThrottled: "454 4.7.0 Error: too many failed logins, try again later",
    AuthFailed: "535 5.7.8 Error: authentication credentials invalid",
    # Submission (RFC 6409): a user sends only as their own addresses.
    SenderNotOwned: "553 5.7.1 Error: sender address not owned by user",
    HeaderSenderRefused: "550 5.7.1 Error: the message needs exactly one From field and at most"
    " one Sender field, each one of your own addresses (RFC 5322 3.6)",
    InvalidAddress: "553 5.1.3 Error: malformed address",
}
# Errors whose text is the reply's: a Sieve reject's reason is the user's message to the sender.
REPLIES_WITH_TEXT: dict[type[BaseException], str] = {
    RejectedByFilter: "550 5.7.1",
}


def reply_for(error: BaseException) -> str:
    """The reply for an error: from the table by class (most specific first), else 451 4.3.0
    after logging the traceback."""
    metrics.MESSAGES_REFUSED.labels(metrics.reason_of(error)).inc()
    for cls in type(error).__mro__:
        if cls in REPLIES_WITH_TEXT:
            return f"{REPLIES_WITH_TEXT[cls]} {error}"
        reply = REPLIES.get(cls)
        if reply is not None:
            return reply
    logger.error("SMTP: unexpected error", exc_info=error)
    return TEMPORARY_FAILURE
