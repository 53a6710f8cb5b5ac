"""Messages in folders, and the raw bytes they share.

The raw message is stored once, content-addressed by SHA-256, whatever the number of folders and
recipients holding it. Each folder holds its own Message row with UID, flags and mod-sequence, and
the parsed fields cached at delivery, so that listing and IMAP FETCH never re-parse mail."""

from django.db import models

from mailcore.models.mailbox import Folder, Mailbox

SYSTEM_FLAGS = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")
FLAG_FIELDS = {
    "\\seen": "seen",
    "\\answered": "answered",
    "\\flagged": "flagged",
    "\\deleted": "deleted",
    "\\draft": "draft",
}


class Blob(models.Model):
    """The raw bytes of a message exactly as received."""

    sha256 = models.CharField(max_length=64, primary_key=True)
    size = models.PositiveBigIntegerField()
    data = models.BinaryField()
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.sha256[:12]} ({self.size} bytes)"


class Message(models.Model):
    # No single-column indexes on these: the composite indexes below start with them.
    mailbox = models.ForeignKey(
        Mailbox, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    folder = models.ForeignKey(
        Folder, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    uid = models.PositiveBigIntegerField()
    modseq = models.PositiveBigIntegerField()
    seen = models.BooleanField(default=False)
    answered = models.BooleanField(default=False)
    flagged = models.BooleanField(default=False)
    deleted = models.BooleanField(default=False)
    draft = models.BooleanField(default=False)
    keywords = models.JSONField(default=list, blank=True)
    internal_date = models.DateTimeField()
    size = models.PositiveBigIntegerField()
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="messages")

    subject = models.TextField(blank=True)
    from_name = models.CharField(max_length=500, blank=True)
    from_addr = models.CharField(max_length=500, blank=True)
    to_addrs = models.TextField(blank=True)
    cc_addrs = models.TextField(blank=True)
    date = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(max_length=998, blank=True)
    in_reply_to = models.CharField(max_length=998, blank=True)
    references = models.TextField(blank=True)
    thread_id = models.CharField(max_length=32)
    preview = models.CharField(max_length=256, blank=True)
    has_attachments = models.BooleanField(default=False)
    envelope = models.JSONField()
    structure = models.JSONField()
    # IMAP SORT and THREAD keys (RFC 5256, RFC 5957), case-mapped at delivery
    # (mailcore.mime.sortkeys), so sorting a folder reads these and parses nothing.
    sort_subject = models.CharField(max_length=100, blank=True, default="")
    subject_is_reply = models.BooleanField(default=False)
    sort_from = models.CharField(max_length=100, blank=True, default="")
    sort_to = models.CharField(max_length=100, blank=True, default="")
    sort_cc = models.CharField(max_length=100, blank=True, default="")
    display_from = models.CharField(max_length=100, blank=True, default="")
    display_to = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        ordering = ["folder", "uid"]
        constraints = [
            models.UniqueConstraint(fields=["folder", "uid"], name="message_unique_uid"),
        ]
        indexes = [
            # The message list, newest first (keyset pages); with the thread id, the
            # conversation list walks it without reading the rows (webmail.conversations).
            models.Index(fields=["folder", "-internal_date", "-id", "thread_id"],
                         name="message_newest"),
            models.Index(fields=["folder", "modseq"], name="message_modseq"),
            models.Index(fields=["mailbox", "thread_id"], name="message_thread"),
            models.Index(fields=["mailbox", "message_id"], name="message_msgid"),
            # A mailbox's messages after an id, in id order: the webmail learns correspondents
            # from where it last stopped as a message opens (without it SQLite walked the
            # whole mailbox by date to find none: 50 ms at 100,000 messages).
            models.Index(fields=["mailbox", "id"], name="message_mailbox_id"),
            # Webmail search across all folders, newest first (keyset pagination).
            models.Index(fields=["mailbox", "-internal_date", "-id"], name="message_mailbox_newest"),
            # Searches for has:attachment and is:flagged alone, newest first: without these
            # they walk every message of the mailbox when few or none qualify.
            models.Index(fields=["mailbox", "-internal_date", "-id"], name="message_attached_newest",
                         condition=models.Q(has_attachments=True)),
            models.Index(fields=["mailbox", "-internal_date", "-id"], name="message_flagged_newest",
                         condition=models.Q(flagged=True)),
            # IMAP SELECT of a large folder: its first unseen message and the keywords in use
            # without reading every row (partial: most messages are seen and have no keyword).
            models.Index(fields=["folder", "uid"], condition=models.Q(seen=False),
                         name="message_unseen"),
            models.Index(fields=["folder", "keywords"], condition=~models.Q(keywords=[]),
                         name="message_keywords"),
            # IMAP SORT and THREAD=ORDEREDSUBJECT read only this index, not the wide rows
            # (issue 15: a 100,000-message folder read three times faster).
            models.Index(fields=["folder", "uid", "internal_date", "date", "size",
                                 "sort_subject", "sort_from", "sort_to", "sort_cc",
                                 "display_from", "display_to"], name="message_sort_keys"),
        ]

    def __str__(self) -> str:
        return f"{self.folder_id}/{self.uid}: {self.subject[:60]}"

    @property
    def flags(self) -> list[str]:
        """System flags and keywords, in IMAP form."""
        result = [flag for flag in SYSTEM_FLAGS if getattr(self, FLAG_FIELDS[flag.lower()])]
        result.extend(self.keywords)
        return result


class ExpungedMessage(models.Model):
    """A tombstone of an expunged UID, so that "changes since a mod-sequence" can report
    removals (RFC 7162 §3.2.10 VANISHED) and the webmail can drop rows live."""

    folder = models.ForeignKey(Folder, on_delete=models.CASCADE, related_name="expunged")
    uid = models.PositiveBigIntegerField()
    modseq = models.PositiveBigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["folder", "modseq"], name="expunged_modseq")]

    def __str__(self) -> str:
        return f"{self.folder_id}/{self.uid} expunged at {self.modseq}"
