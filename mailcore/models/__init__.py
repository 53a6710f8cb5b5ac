"""The mail store: domains, mailboxes, aliases, folders, messages and stored raw messages."""

from mailcore.models.accounts import AppPassword, LoginThrottle, PasswordEpoch, TwoFactor
from mailcore.models.contacts import Contact, ContactEmail, ContactGroup, Correspondent
from mailcore.models.domain import Alias, Domain
from mailcore.models.mailbox import Folder, FolderRole, Mailbox, Subscription
from mailcore.models.message import Blob, ExpungedMessage, Message
from mailcore.models.outbound import (
    DeliveryAttempt,
    DkimKey,
    OutboundMessage,
    OutboundRecipient,
    RecipientState,
)
from mailcore.models.pop3 import MaildropLock, Pop3Size
from mailcore.models.search import SearchDocument
from mailcore.models.sieve import FilterEvent, FilterEventKind, SieveScript, VacationReply
from mailcore.models.trust import InboundVerdict, LookalikeVerdict, SenderRule

__all__ = [
    "Alias",
    "AppPassword",
    "Blob",
    "Contact",
    "ContactEmail",
    "ContactGroup",
    "Correspondent",
    "Domain",
    "ExpungedMessage",
    "Folder",
    "InboundVerdict",
    "LoginThrottle",
    "LookalikeVerdict",
    "PasswordEpoch",
    "FolderRole",
    "Mailbox",
    "MaildropLock",
    "Message",
    "DeliveryAttempt",
    "DkimKey",
    "OutboundMessage",
    "OutboundRecipient",
    "RecipientState",
    "Pop3Size",
    "SearchDocument",
    "FilterEvent",
    "FilterEventKind",
    "SieveScript",
    "VacationReply",
    "SenderRule",
    "TwoFactor",
    "Subscription",
]
