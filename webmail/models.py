"""Per-user webmail preferences. The display name lives on ``Mailbox``; what only the webmail
needs (remote images, conversation view, theme, senders whose images always load) lives here."""

from django.db import models

from mailcore.models import Mailbox


class Theme(models.TextChoices):
    AUTO = "auto", "Follow the system"
    LIGHT = "light", "Light"
    DARK = "dark", "Dark"


class WebmailSettings(models.Model):
    mailbox = models.OneToOneField(Mailbox, on_delete=models.CASCADE, related_name="webmail")
    load_remote_images = models.BooleanField(
        default=False, help_text="Load images from the internet in every message."
    )
    conversation_view = models.BooleanField(
        default=True, help_text="Show the whole conversation when reading a message."
    )
    theme = models.CharField(max_length=8, choices=Theme.choices, default=Theme.AUTO)

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
