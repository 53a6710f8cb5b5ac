"""Mailboxes (accounts) and their folders, with the IMAP identity each folder keeps."""

import secrets

from django.conf import settings
from django.db import models

from mailcore.models.domain import Domain


def default_quota() -> int:
    return settings.CORREIO_DEFAULT_QUOTA


class Mailbox(models.Model):
    """One account: an address of a local domain, owned by one Django user."""

    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="mailboxes")
    local_part = models.CharField(max_length=64)
    address = models.CharField(max_length=320, unique=True, editable=False)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mailbox"
    )
    display_name = models.CharField(max_length=200, blank=True)
    quota = models.PositiveBigIntegerField(
        default=default_quota, help_text="Bytes; 0 means unlimited."
    )
    used_bytes = models.PositiveBigIntegerField(default=0, editable=False)
    active = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["address"]
        verbose_name_plural = "mailboxes"

    def __str__(self) -> str:
        return self.address

    def save(self, *args, **kwargs):
        self.local_part = self.local_part.strip().lower()
        self.address = f"{self.local_part}@{self.domain.name}"
        super().save(*args, **kwargs)

    @property
    def quota_percent(self) -> float | None:
        if not self.quota:
            return None
        return round(100.0 * self.used_bytes / self.quota, 1)


class FolderRole(models.TextChoices):
    """Special-use roles (RFC 6154); every new mailbox gets one folder of each."""

    INBOX = "inbox", "Inbox"
    SENT = "sent", "Sent"
    DRAFTS = "drafts", "Drafts"
    TRASH = "trash", "Trash"
    JUNK = "junk", "Junk"
    ARCHIVE = "archive", "Archive"


def new_uidvalidity() -> int:
    """A fresh UIDVALIDITY: non-zero and within 32 bits (RFC 3501 §2.3.1.1)."""
    return secrets.randbelow(2**31 - 1) + 1


class Folder(models.Model):
    """A folder of a mailbox. Names are full paths with ``/`` as the hierarchy delimiter.

    UIDVALIDITY is fixed for the folder's life; UIDNEXT only grows; HIGHESTMODSEQ grows with every
    change (RFC 3501 §2.3.1.1, RFC 7162). Message and unseen counts are kept in step by the
    service layer so that STATUS and the folder list never count rows."""

    DELIMITER = "/"

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="folders")
    name = models.CharField(max_length=500)
    role = models.CharField(max_length=16, choices=FolderRole.choices, blank=True)
    uidvalidity = models.PositiveBigIntegerField(default=new_uidvalidity, editable=False)
    uidnext = models.PositiveBigIntegerField(default=1, editable=False)
    highestmodseq = models.PositiveBigIntegerField(default=1, editable=False)
    # Tombstones of UIDs expunged at or below this mod-sequence were purged
    # (services/tombstones.py): changes since an older one are answered without them.
    expunged_purged_modseq = models.PositiveBigIntegerField(default=0, editable=False)
    message_count = models.PositiveIntegerField(default=0, editable=False)
    unseen_count = models.PositiveIntegerField(default=0, editable=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["mailbox", "name"]
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "name"], name="folder_unique_name"),
            models.UniqueConstraint(
                fields=["mailbox", "role"],
                condition=~models.Q(role=""),
                name="folder_unique_role",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.mailbox.address}:{self.name}"

    @property
    def parent_name(self) -> str:
        return self.name.rpartition(self.DELIMITER)[0]

    @property
    def leaf_name(self) -> str:
        return self.name.rpartition(self.DELIMITER)[2]


class Subscription(models.Model):
    """A folder name the user subscribed to (IMAP SUBSCRIBE, RFC 3501 §6.3.6). Kept by name,
    not tied to a folder: a subscription outlives the folder's deletion and does not follow a
    folder created later under another name."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="subscriptions")
    name = models.CharField(max_length=500)

    class Meta:
        ordering = ["mailbox", "name"]
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "name"], name="subscription_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.mailbox_id}:{self.name}"
