"""Per-user webmail preferences. The display name lives on ``Mailbox``; what only the webmail
needs (remote images, conversation view, theme, senders whose images always load, signature,
default identity, undo-send window) lives here, with the state of messages being written
(compositions and their uploaded attachments) and the correspondents offered by autocomplete."""

from django.contrib.auth.models import User
from django.db import models

from mailcore.models import Mailbox
from mailcore.services import passwords


class Theme(models.TextChoices):
    AUTO = "auto", "Follow the system"
    LIGHT = "light", "Light"
    DARK = "dark", "Dark"


UNDO_CHOICES = [(5, "5 seconds"), (10, "10 seconds"), (20, "20 seconds"), (30, "30 seconds")]


class WebmailSettings(models.Model):
    mailbox = models.OneToOneField(Mailbox, on_delete=models.CASCADE, related_name="webmail")
    load_remote_images = models.BooleanField(
        default=False, help_text="Load images from the internet in every message."
    )
    conversation_view = models.BooleanField(
        default=True, help_text="Show the whole conversation when reading a message."
    )
    theme = models.CharField(max_length=8, choices=Theme.choices, default=Theme.AUTO)
    signature = models.TextField(
        blank=True, max_length=4000, help_text="Added under new messages, replies and forwards."
    )
    default_identity = models.CharField(
        max_length=320, blank=True, help_text="The address new messages are sent from."
    )
    undo_seconds = models.PositiveSmallIntegerField(
        choices=UNDO_CHOICES, default=10, help_text="How long Undo is offered after Send."
    )
    conversation_list = models.BooleanField(
        default=False, help_text="Group the message list by conversation."
    )
    compose_html = models.BooleanField(
        default=False, help_text="Write new messages, replies and forwards in rich text."
    )
    notify_new_mail = models.BooleanField(
        default=False, help_text="Show a browser notification for new mail in the Inbox."
    )
    # Autocomplete learns correspondents from messages with an id above this (see contacts).
    contacts_scanned_to = models.BigIntegerField(default=0)

    class Meta:
        verbose_name_plural = "webmail settings"

    def __str__(self) -> str:
        return f"webmail settings of {self.mailbox_id}"


class TrustedSender(models.Model):
    """A sender whose messages show remote images without asking ("always for this sender")."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="trusted_senders")
    address = models.CharField(max_length=320)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "address"], name="trusted_sender_unique")
        ]

    def __str__(self) -> str:
        return self.address


class Identity(models.Model):
    """How the user appears when sending as one of their addresses (the mailbox's own or an
    alias): a display name and a signature, plain and, for rich text, HTML (cleaned by
    ``webmail.rich_text`` when saved). Without a row, the mailbox's name and the settings'
    signature apply (``webmail.identities``)."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="identities")
    address = models.CharField(max_length=320)
    display_name = models.CharField(max_length=200, blank=True)
    signature = models.TextField(blank=True, max_length=4000)
    signature_html = models.TextField(blank=True, max_length=20000)

    class Meta:
        verbose_name_plural = "identities"
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "address"], name="identity_unique")
        ]

    def __str__(self) -> str:
        return f"{self.display_name} <{self.address}>" if self.display_name else self.address


class ComposeState(models.TextChoices):
    EDITING = "editing", "Being written"
    SENDING = "sending", "Sent, Undo still possible"
    SCHEDULED = "scheduled", "Scheduled"
    SENT = "sent", "Sent"


class Composition(models.Model):
    """A message being written, as typed (so a failed send, an Undo or a reopened draft brings
    the form back exactly as it was). Its saved draft is a real message in Drafts (so IMAP
    clients see it); once sent, it keeps the queue entry's id for Undo and the Outbox."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="compositions")
    state = models.CharField(max_length=12, choices=ComposeState.choices,
                             default=ComposeState.EDITING)
    from_addr = models.CharField(max_length=320, blank=True)
    to = models.TextField(blank=True)
    cc = models.TextField(blank=True)
    bcc = models.TextField(blank=True)
    subject = models.TextField(blank=True)
    body = models.TextField(blank=True)
    # Rich text (webmail.rich_text): the editor's HTML, cleaned on the server; ``body`` then
    # holds its text/plain alternative.
    rich = models.BooleanField(default=False)
    body_html = models.TextField(blank=True)
    # Threading (RFC 5322 §3.6.4) and the message replied to, which gets \Answered on send.
    in_reply_to = models.CharField(max_length=998, blank=True)
    references = models.TextField(blank=True)
    replied = models.ForeignKey("mailcore.Message", on_delete=models.SET_NULL, null=True,
                                blank=True, related_name="+")
    replied_was_answered = models.BooleanField(default=False)
    # Forward as attachment: the original goes along as message/rfc822.
    forwarded = models.ForeignKey("mailcore.Message", on_delete=models.SET_NULL, null=True,
                                  blank=True, related_name="+")
    # The Message-ID the sent message (and every saved draft of it) carries.
    message_id = models.CharField(max_length=998)
    draft_uid = models.PositiveBigIntegerField(null=True, blank=True)
    saved_hash = models.CharField(max_length=64, blank=True)
    saved_at = models.DateTimeField(null=True, blank=True)
    outbound_id = models.BigIntegerField(null=True, blank=True)
    send_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["mailbox", "state"], name="composition_state"),
            models.Index(fields=["mailbox", "message_id"], name="composition_msgid"),
        ]

    def __str__(self) -> str:
        return f"{self.subject[:60] or '(no subject)'} ({self.state})"


class Upload(models.Model):
    """An attachment uploaded into a composition, kept until the composition goes away."""

    composition = models.ForeignKey(Composition, on_delete=models.CASCADE,
                                    related_name="uploads")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    data = models.BinaryField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["composition", "id"]

    def __str__(self) -> str:
        return self.filename


class SessionUser(User):
    """The user as web sessions see it (the webmail and the admin; webmail/auth_backend.py loads
    it): its session auth hash is the password *epoch* (mailcore/services/passwords.py), so a
    re-hash of the same password at a login elsewhere ends no session while a new password
    still ends them all. Equal to Django's own hash until a re-hash happens."""

    class Meta:
        proxy = True

    def get_session_auth_hash(self) -> str:
        return passwords.epoch_for_user(self)
