"""Drafts: saving a message being written into the Drafts folder and removing it again.

A draft is an ordinary message in the folder with role ``drafts``, flagged ``\\Draft`` and
``\\Seen`` (RFC 3501 §2.3.2), so IMAP clients see and can open the same drafts the webmail
saves. Saving again appends the new version and expunges the previous one in one transaction,
as IMAP clients do (APPEND then EXPUNGE: a message's bytes never change, RFC 3501 §2.3.1.1)."""

from django.db import transaction

from mailcore.models import FolderRole, Mailbox, Message
from mailcore.services.delivery import append_message
from mailcore.services.folders import expunge, get_folder_by_role

DRAFT_FLAGS = ("\\Draft", "\\Seen")


def save_draft(mailbox: Mailbox, raw: bytes, *, replace_uid: int | None = None) -> Message:
    """Store ``raw`` in Drafts, replacing the draft with UID ``replace_uid`` if it is still
    there. Raises ``QuotaExceeded`` (nothing changes then) or ``FolderNotFound``."""
    drafts = get_folder_by_role(mailbox, FolderRole.DRAFTS)
    with transaction.atomic():
        message = append_message(drafts, raw, flags=DRAFT_FLAGS)
        if replace_uid:
            expunge(drafts, [replace_uid], only_deleted=False)
    return message


def discard_draft(mailbox: Mailbox, uid: int | None) -> bool:
    """Remove the draft with this UID from Drafts; False when it was already gone."""
    if not uid:
        return False
    drafts = get_folder_by_role(mailbox, FolderRole.DRAFTS)
    return bool(expunge(drafts, [uid], only_deleted=False))
