"""What the MX concluded about a received message (issue 14): sender authentication and the
spam engine's verdict, kept with the stored bytes so the webmail can say why a message is in
Junk. The ``Authentication-Results`` field we prepend to the message holds the same results for
IMAP clients."""

from django.db import models

from mailcore.models.message import Blob


class InboundVerdict(models.Model):
    blob = models.OneToOneField(Blob, primary_key=True, on_delete=models.CASCADE,
                                related_name="verdict")
    # DMARC result of the author domain (RFC 7489): pass, fail, none, permerror.
    dmarc = models.CharField(max_length=16, blank=True)
    # Delivered into Junk by policy (DMARC quarantine, the spam engine's "add header").
    junk = models.BooleanField(default=False)
    # The spam engine: whether it answered, its action, score, and heaviest symbols.
    spam_scanned = models.BooleanField(default=False)
    spam_action = models.CharField(max_length=32, blank=True)
    spam_score = models.FloatField(null=True, blank=True)
    # Its reject threshold (rspamd's required_score): Sieve's spamtest scales against it.
    spam_required = models.FloatField(null=True, blank=True)
    spam_symbols = models.JSONField(default=list, blank=True)
    reasons = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.blob_id[:12]}: dmarc={self.dmarc} spam={self.spam_action or '-'}"


class LookalikeVerdict(models.Model):
    """A received message whose From imitates someone this mailbox's user knows
    (``mailcore.trust.lookalike``), judged by the MX at delivery against the user's known
    correspondents of that moment and kept, like ``InboundVerdict``, with the stored bytes
    (one row per recipient mailbox: what is "known" is each user's). Copies and moves within
    the mailbox share the bytes, so the warning follows the message."""

    NAME, DOMAIN = "name", "domain"
    KINDS = [(NAME, "Display name of a known correspondent"),
             (DOMAIN, "Domain like a known domain")]

    mailbox = models.ForeignKey("mailcore.Mailbox", on_delete=models.CASCADE,
                                related_name="lookalike_verdicts")
    blob = models.ForeignKey(Blob, on_delete=models.CASCADE, related_name="lookalikes")
    kind = models.CharField(max_length=8, choices=KINDS)
    # The From as received (display name, address) and what it imitates: the known address
    # (kind "name") or the known domain (kind "domain").
    from_name = models.CharField(max_length=200, blank=True)
    from_addr = models.CharField(max_length=320)
    imitated = models.CharField(max_length=320)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "blob"], name="lookalike_verdict_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.from_addr} imitates {self.imitated} ({self.kind})"


class SenderRule(models.Model):
    """A user's allow or block entry for a sender address or a whole domain (issue 14).
    Blocked: the MX files the sender's mail into that user's Junk (refused when every
    recipient blocks it). Allowed: mail from the sender, once authenticated (DMARC or SPF
    pass), is never put into Junk for that user by policy or the spam filter."""

    ALLOW, BLOCK = "allow", "block"
    KINDS = [(ALLOW, "Allow"), (BLOCK, "Block")]

    mailbox = models.ForeignKey("mailcore.Mailbox", on_delete=models.CASCADE,
                                related_name="sender_rules")
    # An address (local@domain) or a domain, lower case.
    pattern = models.CharField(max_length=254)
    kind = models.CharField(max_length=5, choices=KINDS)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "pattern"], name="sender_rule_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.mailbox_id}: {self.kind} {self.pattern}"
