"""Domain errors raised by the service layer. Each door maps them to its own replies."""


class MailError(Exception):
    """Base of every error the service layer raises on purpose."""

    message = "mail error"

    def __init__(self, message: str | None = None):
        super().__init__(message or self.message)


class DomainNotFound(MailError):
    message = "no such domain"


class MailboxNotFound(MailError):
    message = "no such mailbox"


class MailboxInactive(MailError):
    message = "mailbox disabled"


class UnknownRecipient(MailError):
    message = "no such user here"


class RelayDenied(MailError):
    message = "relay access denied"


class AliasLoop(MailError):
    message = "alias expansion loops or is too deep"


class QuotaExceeded(MailError):
    message = "mailbox is over quota"


class MessageTooLarge(MailError):
    message = "message exceeds the size limit"


class FolderNotFound(MailError):
    message = "no such folder"


class FolderExists(MailError):
    message = "folder already exists"


class SpecialUseUnavailable(MailError):
    """A special use (RFC 6154) that is unknown here or already another folder's."""

    message = "that special use cannot be given to this folder"


class FolderProtected(MailError):
    message = "special folders cannot be deleted or renamed"


class FolderHasChildren(MailError):
    message = "folder has subfolders; delete them first"


class InvalidFolderName(MailError):
    message = "invalid folder name"


class AuthFailed(MailError):
    message = "authentication failed"


class AuthThrottled(AuthFailed):
    message = "too many failed logins; try again later"


class AuthDelayed(AuthThrottled):
    """The throttle wants a longer wait than this door may spend (the web): nothing was
    counted, and the client may try again after ``wait`` seconds."""

    message = "too many failed logins; wait a little"

    def __init__(self, wait: float):
        super().__init__()
        self.wait = wait


class InvalidAddress(MailError):
    message = "malformed address"


class SenderNotOwned(MailError):
    message = "sender address not owned by the authenticated user"


class HeaderSenderRefused(SenderNotOwned):
    """The From/Sender fields of a submitted message: not exactly one From and at most one
    Sender (RFC 5322 §3.6), or an address in them that is not the user's."""

    message = "From and Sender must be exactly one From and at most one Sender of your own"


class MaildropLocked(MailError):
    message = "maildrop already locked by another session"


class MessageGone(MailError):
    message = "message was removed by another session"


class RejectedByFilter(MailError):
    """Every recipient's Sieve script rejected the message (RFC 5429 §2.1.1): the SMTP door
    refuses it at DATA with the script's reason, and nothing is stored."""

    message = "message rejected"
