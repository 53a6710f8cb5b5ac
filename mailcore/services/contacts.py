"""The address book service: contacts (name, addresses, phones, notes, groups), vCard import
and export (RFC 6350, through ``mailcore.mime.vcard``), the suggestions of compose
autocomplete and the members of a group. Every door (the webmail now, CardDAV later) goes
through these functions; each is one transaction.

Limits (an address book is small; an import is untrusted input): at most
:data:`MAX_CONTACTS` contacts and :data:`MAX_GROUPS` groups a mailbox; the vCard reader bounds
the file itself."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Prefetch, Q

from mailcore.mime.vcard import Card, VCardError, format_vcard, parse_vcards
from mailcore.models import Contact, ContactEmail, ContactGroup, Mailbox

MAX_CONTACTS = 20_000
MAX_GROUPS = 500
MAX_ADDRESSES = 50
__all__ = ["VCardError"]


@dataclass
class ContactInput:
    name: str
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    notes: str = ""
    groups: list[str] = field(default_factory=list)
    uid: str = ""


@dataclass(frozen=True)
class Suggestion:
    """One autocomplete entry: a person, or a group standing for its members."""

    name: str
    address: str
    members: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int


def _clean_address(address: str) -> str:
    address = address.strip()
    local, at, domain = address.rpartition("@")
    if (not at or not local or "." not in domain or len(address) > 320
            or any(c.isspace() or c in "<>,;\"" for c in address)):
        raise ValidationError(f"{address[:80]!r} is not an e-mail address.")
    return f"{local}@{domain.lower()}"


def check_contact(data: ContactInput) -> ContactInput:
    """Validate and normalise what a person (or a vCard) gave; raise ``ValidationError``."""
    # One entry per address, compared without case (the local part is case-sensitive in
    # RFC 5321 §2.4, but no one keeps two contacts apart by it).
    emails: dict[str, str] = {}
    for entry in data.emails:
        if entry.strip():
            address = _clean_address(entry)
            emails.setdefault(address.lower(), address)
    if len(emails) > MAX_ADDRESSES:
        raise ValidationError(f"At most {MAX_ADDRESSES} addresses a contact.")
    emails = list(emails.values())
    name = " ".join(data.name.split())[:200] or (emails[0] if emails else "")
    if not name:
        raise ValidationError("A contact needs a name or an address.")
    groups = list(dict.fromkeys(" ".join(g.split())[:100] for g in data.groups if g.strip()))
    phones = [p.strip()[:64] for p in data.phones if p.strip()][:MAX_ADDRESSES]
    return ContactInput(name, emails, phones, data.notes.strip()[:4000], groups, data.uid[:255])


def _groups(mailbox: Mailbox, names: list[str]) -> list[ContactGroup]:
    found = {g.name: g for g in ContactGroup.objects.filter(mailbox=mailbox, name__in=names)}
    missing = [n for n in names if n not in found]
    if missing and ContactGroup.objects.filter(mailbox=mailbox).count() + len(missing) > MAX_GROUPS:
        raise ValidationError(f"At most {MAX_GROUPS} groups.")
    for name in missing:
        found[name] = ContactGroup.objects.create(mailbox=mailbox, name=name)
    return [found[n] for n in names]


def _store(mailbox: Mailbox, data: ContactInput, contact: Contact | None) -> Contact:
    if contact is None:
        if Contact.objects.filter(mailbox=mailbox).count() >= MAX_CONTACTS:
            raise ValidationError(f"The address book is full ({MAX_CONTACTS} contacts).")
        contact = Contact(mailbox=mailbox, uid=data.uid or f"urn:uuid:{uuid.uuid4()}")
    contact.name = data.name
    contact.phones = "\n".join(data.phones)
    contact.notes = data.notes
    contact.save()
    contact.emails.all().delete()
    ContactEmail.objects.bulk_create(
        ContactEmail(contact=contact, mailbox=mailbox, address=a, position=i)
        for i, a in enumerate(data.emails)
    )
    contact.groups.set(_groups(mailbox, data.groups))
    return contact


def save_contact(mailbox: Mailbox, data: ContactInput, contact_id: int | None = None) -> Contact:
    """Create a contact, or replace one of this mailbox's; raise ``ValidationError``
    (``Contact.DoesNotExist`` for someone else's id)."""
    data = check_contact(data)
    with transaction.atomic():
        contact = None
        if contact_id is not None:
            contact = Contact.objects.select_for_update().get(pk=contact_id, mailbox=mailbox)
        return _store(mailbox, data, contact)


def delete_contact(mailbox: Mailbox, contact_id: int) -> bool:
    deleted, _ = Contact.objects.filter(pk=contact_id, mailbox=mailbox).delete()
    return bool(deleted)


def list_contacts(mailbox: Mailbox, group_id: int | None = None):
    contacts = Contact.objects.filter(mailbox=mailbox).prefetch_related(
        Prefetch("emails", queryset=ContactEmail.objects.order_by("position", "id")), "groups")
    if group_id is not None:
        contacts = contacts.filter(groups__id=group_id)
    return contacts


def group_members(mailbox: Mailbox, group_id: int) -> list[tuple[str, str]]:
    """(name, first address) of each member of one of this mailbox's groups that has one."""
    members = []
    for contact in list_contacts(mailbox, group_id):
        emails = list(contact.emails.all())
        if emails:
            members.append((contact.name, emails[0].address))
    return members


def suggest(mailbox: Mailbox, query: str, limit: int = 8) -> list[Suggestion]:
    """Groups whose name starts with ``query``, then contacts whose name or address does (or
    has a word starting with it)."""
    query = query.strip()[:100]
    if not query:
        return []
    out = []
    for group in ContactGroup.objects.filter(mailbox=mailbox, name__istartswith=query)[:3]:
        members = tuple(group_members(mailbox, group.pk))
        if members:
            out.append(Suggestion(group.name, "", members))
    emails = (ContactEmail.objects.filter(mailbox=mailbox)
              .filter(Q(address__istartswith=query) | Q(contact__name__istartswith=query)
                      | Q(contact__name__icontains=f" {query}"))
              .select_related("contact").order_by("contact__name", "position")[:limit])
    out += [Suggestion(e.contact.name, e.address) for e in emails]
    return out[:limit]


def known_addresses(mailbox: Mailbox) -> set[str]:
    return {a.lower() for a in ContactEmail.objects.filter(mailbox=mailbox)
            .values_list("address", flat=True)}


def add_correspondents(mailbox: Mailbox, people: list[tuple[str, str]]) -> int:
    """Add each (name, address) not already in the address book as a contact; return how many
    were added. Bad addresses are skipped (correspondents come from mail, which lies)."""
    known = known_addresses(mailbox)
    added = 0
    with transaction.atomic():
        for name, address in people:
            if address.lower() in known:
                continue
            try:
                data = check_contact(ContactInput(name, [address]))
            except ValidationError:
                continue
            _store(mailbox, data, None)
            known.add(address.lower())
            added += 1
    return added


def _member_contact(mailbox: Mailbox, uri: str) -> Contact | None:
    """The contact a group card's MEMBER URI names (RFC 6350 §6.6.5): by UID, or by address
    for ``mailto:`` (a contact is added for an address not yet in the book)."""
    contact = Contact.objects.filter(mailbox=mailbox, uid=uri).first()
    if contact is not None or not uri.lower().startswith("mailto:"):
        return contact
    address = unquote(uri[len("mailto:"):].split("?", 1)[0])
    email = ContactEmail.objects.filter(mailbox=mailbox, address__iexact=address.strip()) \
        .select_related("contact").first()
    if email is not None:
        return email.contact
    return _store(mailbox, check_contact(ContactInput(address, [address])), None)


def _import_group(mailbox: Mailbox, card: Card, before: set[int]) -> bool:
    """A ``KIND:group`` card: the group (found by UID, else by name) gets the card's members
    added; members the book cannot resolve (a sip: URI, an unknown UID) are skipped. A group
    new in this import (perhaps made from its members' CATEGORIES) takes the card's UID, one
    that was there before keeps its own, as a contact does. True when it was there before."""
    name = " ".join(card.name.split())[:100]
    group = None
    if card.uid:
        group = ContactGroup.objects.filter(mailbox=mailbox, uid=card.uid).first()
    if group is None:
        group = ContactGroup.objects.filter(mailbox=mailbox, name=name).first()
    if group is None:
        [group] = _groups(mailbox, [name])
    elif group.name != name and not ContactGroup.objects.filter(mailbox=mailbox, name=name).exists():
        group.name = name  # renamed elsewhere: the card's name wins, as a contact's does
        group.save(update_fields=["name"])
    if card.uid and group.pk not in before and group.uid != card.uid:
        group.uid = card.uid
        group.save(update_fields=["uid"])
    members = [_member_contact(mailbox, uri) for uri in dict.fromkeys(card.members)]
    group.contacts.add(*[m for m in members if m is not None])
    return group.pk in before


def import_vcards(mailbox: Mailbox, data: bytes) -> ImportResult:
    """Add or update contacts from a .vcf file: a card updates the contact with its UID, else
    the one with its first address, else is added. ``KIND:group`` cards become groups with
    their members, after every person of the file is in (a MEMBER may name a later card).
    The whole file or nothing: raise ``VCardError`` or ``ValidationError`` naming the card at
    fault."""
    cards = parse_vcards(data)
    created = updated = 0
    with transaction.atomic():
        before = set(ContactGroup.objects.filter(mailbox=mailbox).values_list("pk", flat=True))
        for index, card in enumerate(cards, start=1):
            if card.is_group:
                continue
            try:
                clean = check_contact(ContactInput(card.name, card.emails, card.phones,
                                                   card.note, card.categories, card.uid))
            except ValidationError as exc:
                raise ValidationError(f"Card {index} ({card.name[:60]}): {exc.messages[0]}") from None
            contact = None
            if clean.uid:
                contact = Contact.objects.filter(mailbox=mailbox, uid=clean.uid).first()
            if contact is None and clean.emails:
                email = ContactEmail.objects.filter(
                    mailbox=mailbox, address__iexact=clean.emails[0]).select_related("contact").first()
                contact = email.contact if email else None
            if contact is not None:
                clean.uid = contact.uid
            _store(mailbox, clean, contact)
            created, updated = (created, updated + 1) if contact else (created + 1, updated)
        for index, card in enumerate(cards, start=1):
            if not card.is_group:
                continue
            try:
                existed = _import_group(mailbox, card, before)
            except ValidationError as exc:
                raise ValidationError(f"Card {index} ({card.name[:60]}): {exc.messages[0]}") from None
            created, updated = (created, updated + 1) if existed else (created + 1, updated)
    return ImportResult(created, updated)


def _member_uri(contact: Contact) -> str:
    """How a group card names a member (RFC 6350 §6.6.5): its UID when that is a URI (ours
    are ``urn:uuid:``), else its first address as ``mailto:``; "" when it has neither."""
    uid = contact.uid
    if ":" in uid and uid.isprintable() and " " not in uid:
        return uid
    emails = list(contact.emails.all())
    return "mailto:" + quote(emails[0].address, safe="@!$&'*+=.-_~") if emails else ""


def export_vcards(mailbox: Mailbox) -> str:
    """The whole address book as vCard 4.0 text: each person (with CATEGORIES for their
    groups), then each group as a ``KIND:group`` card listing its members."""
    contacts = list(list_contacts(mailbox))
    people = "".join(
        format_vcard(Card(name=c.name, emails=[e.address for e in c.emails.all()],
                          phones=c.phone_list, note=c.notes,
                          categories=[g.name for g in c.groups.all()], uid=c.uid))
        for c in contacts
    )
    members: dict[int, list[str]] = {}
    for contact in contacts:
        uri = _member_uri(contact)
        for group in contact.groups.all():
            if uri:
                members.setdefault(group.pk, []).append(uri)
    groups = "".join(
        format_vcard(Card(name=g.name, uid=g.uid, kind="group", members=members.get(g.pk, [])))
        for g in ContactGroup.objects.filter(mailbox=mailbox)
    )
    return people + groups
