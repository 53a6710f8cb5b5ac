"""What POP3 keeps between sessions: the maildrop lock of RFC 1939 §8, and each stored message's
size as POP3 transmits it (CRLF line ends), so STAT and LIST never load message bodies."""

from django.db import models

from mailcore.models.mailbox import Mailbox
from mailcore.models.message import Blob


class MaildropLock(models.Model):
    """The exclusive-access lock a POP3 session holds on a mailbox (RFC 1939 §8, [IN-USE] of
    RFC 2449 §8.1.1).

    It lives in the database because runpop3 and runmail may run as separate processes. It is a
    lease: the session renews ``expires`` while it lives, so the lock of a session whose process
    died lapses by itself."""

    mailbox = models.OneToOneField(
        Mailbox, on_delete=models.CASCADE, primary_key=True, related_name="maildrop_lock"
    )
    token = models.CharField(max_length=32)
    holder = models.CharField(max_length=200, blank=True)
    acquired = models.DateTimeField()
    expires = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.mailbox_id} locked by {self.holder or self.token} until {self.expires}"


class Pop3Size(models.Model):
    """A stored message's size in octets as POP3 sends it: bare LF counted as CRLF, and a last
    line without an end counted with the CRLF the server adds (RFC 1939 §11).

    Keyed by the blob, so it is computed once per stored message whatever the number of
    mailboxes holding it, and goes with the blob."""

    blob = models.OneToOneField(
        Blob, on_delete=models.CASCADE, primary_key=True, related_name="pop3_size"
    )
    size = models.PositiveBigIntegerField()

    def __str__(self) -> str:
        return f"{self.blob_id[:12]}: {self.size}"
