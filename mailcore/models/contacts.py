"""The address book: contacts with their e-mail addresses and groups. In mailcore (not the
webmail) so that a later CardDAV door (RFC 6352) serves the same rows; ``uid`` is the vCard UID
(RFC 6350 §6.7.6) such a door needs."""

import uuid

from django.db import models

from mailcore.models.mailbox import Mailbox


def new_uid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


class ContactGroup(models.Model):
    """A group; exported as a ``KIND:group`` vCard (RFC 6350 §6.1.4) whose UID is ``uid``."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="contact_groups")
    name = models.CharField(max_length=100)
    uid = models.CharField(max_length=255, default=new_uid)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "name"], name="contact_group_unique")
        ]

    def __str__(self) -> str:
        return self.name


class Contact(models.Model):
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="contacts")
    uid = models.CharField(max_length=255)
    name = models.CharField(max_length=200)
    # One telephone number a line, as typed.
    phones = models.TextField(blank=True, max_length=2000)
    notes = models.TextField(blank=True, max_length=4000)
    groups = models.ManyToManyField(ContactGroup, blank=True, related_name="contacts")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "uid"], name="contact_uid_unique")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def phone_list(self) -> list[str]:
        return [p for p in self.phones.splitlines() if p.strip()]


class ContactEmail(models.Model):
    """One address of a contact; ``mailbox`` is repeated so autocomplete is one indexed query."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="emails")
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="+")
    address = models.CharField(max_length=320)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["mailbox", "address"], name="contact_email_address")]

    def __str__(self) -> str:
        return self.address


class Correspondent(models.Model):
    """Someone the user has written to or received mail from: address autocomplete in the
    webmail, and who counts as "known" when the MX judges whether a sender imitates someone
    the user knows (``mailcore.trust.lookalike``). Learnt by the webmail from the message rows
    and its own sends; the table keeps its first name (it was the webmail's)."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE,
                                related_name="correspondents")
    address = models.CharField(max_length=320)
    name = models.CharField(max_length=200, blank=True)
    # Mail sent to them counts more than mail received from them.
    score = models.PositiveIntegerField(default=0)
    last_seen = models.DateTimeField()

    class Meta:
        db_table = "webmail_correspondent"
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "address"], name="correspondent_unique")
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.address}>" if self.name else self.address
