"""Sieve filters (RFC 5228): each mailbox's scripts (one active at most, RFC 5804 §1.6), what
filtering did that the user should see, and the vacation replies already sent (RFC 5230 §4.2)."""

from django.db import models

from mailcore.models.mailbox import Mailbox
from mailcore.models.outbound import OutboundMessage


class SieveScript(models.Model):
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="sieve_scripts")
    name = models.CharField(max_length=128)
    content = models.TextField(blank=True)
    # SHA-256 of the content: compiled scripts are cached per process under it.
    digest = models.CharField(max_length=64)
    active = models.BooleanField(default=False)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["mailbox", "name"]
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "name"], name="sieve_unique_name"),
            models.UniqueConstraint(fields=["mailbox"], condition=models.Q(active=True),
                                    name="sieve_one_active"),
        ]

    def __str__(self) -> str:
        return f"{self.mailbox_id}:{self.name}{' (active)' if self.active else ''}"


class FilterEventKind(models.TextChoices):
    ERROR = "error", "Script error (message kept in INBOX)"
    DISCARD = "discard", "Discarded"
    REJECT = "reject", "Rejected"
    REDIRECT = "redirect", "Redirected"
    VACATION = "vacation", "Vacation reply"


class FilterEvent(models.Model):
    """Something filtering did the user should be able to see: errors above all (a broken
    script never loses mail, and never fails silently either)."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="filter_events")
    at = models.DateTimeField()
    kind = models.CharField(max_length=16, choices=FilterEventKind.choices)
    detail = models.TextField(blank=True)
    message_id = models.CharField(max_length=998, blank=True)
    # The queued message (vacation reply, redirect, bounce), for its delivery status.
    outbound = models.ForeignKey(OutboundMessage, on_delete=models.SET_NULL, null=True,
                                 blank=True, related_name="+")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["mailbox", "-at", "-id"], name="filter_event_newest")]

    def __str__(self) -> str:
        return f"{self.mailbox_id} {self.kind} {self.at:%Y-%m-%d %H:%M}"


class VacationReply(models.Model):
    """One reply per sender per period (RFC 5230 §4.2): who was answered, under which handle,
    and when."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="+")
    sender = models.CharField(max_length=320)
    handle = models.CharField(max_length=64)
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mailbox", "sender", "handle"],
                                               name="vacation_unique_sender")]

    def __str__(self) -> str:
        return f"{self.mailbox_id} -> {self.sender} at {self.sent_at}"
