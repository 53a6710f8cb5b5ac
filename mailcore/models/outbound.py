"""The outbound queue, held in the database (the source of truth; Redis only carries tasks).

A queued message stores its raw bytes once (a :class:`Blob`) with the envelope sender, and has
one row per recipient carrying that recipient's delivery state, attempts and last reply, and an
attempt history. Workers take a message with a conditional update on its lock columns, so two
workers never deliver the same recipients at once (ARCHITECTURE.md, "No loss").

Also the DKIM keys of local domains (RFC 6376): outbound mail from a domain with a key is signed.
"""

from django.db import models

from mailcore.models.domain import Domain
from mailcore.models.mailbox import Mailbox
from mailcore.models.message import Blob


class RecipientState(models.TextChoices):
    QUEUED = "queued", "Queued"
    DEFERRED = "deferred", "Deferred"
    DELIVERED = "delivered", "Delivered"
    BOUNCED = "bounced", "Bounced"
    EXPIRED = "expired", "Expired"


# States in which a recipient still waits for delivery.
PENDING_STATES = (RecipientState.QUEUED, RecipientState.DEFERRED)


class OutboundMessage(models.Model):
    """One message waiting to leave (or that left: kept for the admin until cleaned up)."""

    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="outbound")
    # The envelope sender (RFC 5321 §4.1.1.2); empty for the null sender ``<>`` (bounces),
    # which never gets a bounce back (RFC 3464 §2, RFC 5321 §4.5.5).
    mail_from = models.CharField(max_length=320, blank=True)
    mailbox = models.ForeignKey(
        Mailbox,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="outbound",
        help_text="The account that submitted it, if any.",
    )
    size = models.PositiveBigIntegerField()
    subject = models.TextField(blank=True)
    message_id = models.CharField(max_length=998, blank=True)
    created = models.DateTimeField()
    expires = models.DateTimeField(help_text="Recipients still undelivered then are expired.")
    # Not sent before this time ("undo send", "send later").
    hold_until = models.DateTimeField(null=True, blank=True)
    # True once every recipient reached a final state; the cleanup deletes it later.
    finished = models.BooleanField(default=False)
    # The per-message lock: a worker owns the message while locked_until is in the future and
    # lock_token is its own (a Celery task id, so a redelivered task takes its own lock back).
    lock_token = models.CharField(max_length=64, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["finished", "created"], name="outbound_finished")]

    def __str__(self) -> str:
        return f"<{self.mail_from}> {self.subject[:60]}"


class OutboundRecipient(models.Model):
    message = models.ForeignKey(
        OutboundMessage, on_delete=models.CASCADE, related_name="recipients"
    )
    address = models.CharField(max_length=320)
    # Lower-cased domain part: recipients sharing it share one SMTP transaction.
    domain = models.CharField(max_length=253)
    state = models.CharField(
        max_length=16, choices=RecipientState.choices, default=RecipientState.QUEUED
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt = models.DateTimeField()
    last_attempt = models.DateTimeField(null=True, blank=True)
    last_reply = models.TextField(blank=True)
    last_host = models.CharField(max_length=300, blank=True)
    # A "delayed" DSN (RFC 3464 Action: delayed) went out for this recipient.
    delay_notified = models.BooleanField(default=False)

    class Meta:
        ordering = ["message", "id"]
        indexes = [models.Index(fields=["state", "next_attempt"], name="outbound_due")]

    def __str__(self) -> str:
        return f"{self.address} ({self.state})"

    @property
    def is_pending(self) -> bool:
        return self.state in PENDING_STATES


class DeliveryAttempt(models.Model):
    """One try at one recipient: when, which host, what it answered, and what followed."""

    recipient = models.ForeignKey(
        OutboundRecipient, on_delete=models.CASCADE, related_name="history"
    )
    at = models.DateTimeField()
    host = models.CharField(max_length=300, blank=True)
    code = models.PositiveIntegerField(null=True, blank=True)
    reply = models.TextField(blank=True)
    outcome = models.CharField(max_length=16, choices=RecipientState.choices)

    class Meta:
        ordering = ["recipient", "at", "id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.host} {self.code} {self.outcome}"


class DkimKey(models.Model):
    """The DKIM signing key of a local domain (RFC 6376 §3.6.1 for the published record)."""

    domain = models.OneToOneField(Domain, on_delete=models.CASCADE, related_name="dkim_key")
    selector = models.CharField(max_length=63, default="correio")
    private_key = models.TextField(help_text="PEM, PKCS#8 or PKCS#1 RSA private key.")
    public_key = models.TextField(help_text="Base64 DER SubjectPublicKeyInfo (the p= value).")
    active = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "DKIM key"

    def __str__(self) -> str:
        return f"{self.selector}._domainkey.{self.domain.name}"

    @property
    def dns_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain.name}"

    @property
    def txt_record(self) -> str:
        return f"v=DKIM1; k=rsa; p={self.public_key}"
