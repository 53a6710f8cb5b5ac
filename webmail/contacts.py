"""Address autocomplete: the address book first (``mailcore.services.contacts``: its groups
and contacts), then the people the user has written to or received mail from.

Correspondents are learnt incrementally from the message rows (senders of received mail, the
To/Cc of sent mail), from where the last look stopped, so a suggestion costs an indexed lookup
in a small table rather than a scan of a 100,000-message mailbox; the recipients of every
message sent from the webmail are added as it is sent."""

from __future__ import annotations

from django.db.models import F, Q
from django.utils import timezone

from mailcore.mime.addresses import parse_address_list
from mailcore.models import Correspondent, FolderRole, Mailbox, Message
from mailcore.services import contacts as address_book
from mailcore.services.correspondents import KNOWN_SCORE
from webmail.models import WebmailSettings

LEARN_BATCH = 5000
MAX_SUGGESTIONS = 8
# Mail sent to someone makes them known at once (the MX's lookalike check counts from it).
SENT_WEIGHT = KNOWN_SCORE
_NOBODY = ("mailer-daemon@", "postmaster@", "no-reply@", "noreply@", "do-not-reply@")


def _remember(mailbox: Mailbox, people: dict[str, tuple[str, int]]) -> None:
    now = timezone.now()
    existing = {
        c.address: c for c in Correspondent.objects.filter(mailbox=mailbox, address__in=people)
    }
    new = []
    for address, (name, weight) in people.items():
        found = existing.get(address)
        if found is None:
            new.append(Correspondent(mailbox=mailbox, address=address, name=name[:200],
                                     score=weight, last_seen=now))
        else:
            Correspondent.objects.filter(pk=found.pk).update(
                score=F("score") + weight, last_seen=now, name=(name or found.name)[:200]
            )
    Correspondent.objects.bulk_create(new, ignore_conflicts=True)


def _collect(people: dict, pairs, weight: int) -> None:
    for name, addr in pairs:
        addr = addr.strip().lower()[:320]
        if not addr or "@" not in addr or addr.startswith(_NOBODY):
            continue
        old_name, old_weight = people.get(addr, ("", 0))
        people[addr] = (name.strip() or old_name, old_weight + weight)


def learn(mailbox: Mailbox, prefs: WebmailSettings) -> None:
    """Read the messages that arrived since the last call (a batch at most per call)."""
    rows = list(
        Message.objects.filter(mailbox=mailbox, pk__gt=prefs.contacts_scanned_to)
        .order_by("pk")
        .values_list("pk", "from_name", "from_addr", "to_addrs", "cc_addrs", "folder__role")
        [:LEARN_BATCH]
    )
    if not rows:
        return
    own = mailbox.address.lower()
    people: dict[str, tuple[str, int]] = {}
    for _pk, from_name, from_addr, to_addrs, cc_addrs, role in rows:
        if role == FolderRole.SENT:
            _collect(people, parse_address_list(f"{to_addrs}, {cc_addrs}"), SENT_WEIGHT)
        elif role not in (FolderRole.JUNK, FolderRole.DRAFTS) and from_addr.lower() != own:
            _collect(people, [(from_name, from_addr)], 1)
    people.pop(own, None)
    if people:
        _remember(mailbox, people)
    prefs.contacts_scanned_to = rows[-1][0]
    if prefs.pk:
        WebmailSettings.objects.filter(pk=prefs.pk).update(
            contacts_scanned_to=prefs.contacts_scanned_to)
    else:
        prefs.save()


def remember_recipients(mailbox: Mailbox, pairs: list[tuple[str, str]]) -> None:
    people: dict[str, tuple[str, int]] = {}
    _collect(people, pairs, SENT_WEIGHT)
    people.pop(mailbox.address.lower(), None)
    if people:
        _remember(mailbox, people)


def suggest(mailbox: Mailbox, prefs: WebmailSettings,
            query: str) -> list[address_book.Suggestion]:
    """Up to a few suggestions for ``query``: groups and contacts of the address book, then
    correspondents whose address or name starts with it (or has a word starting with it), most
    written-to first; one entry per address."""
    query = query.strip()
    if not query:
        return []
    found = address_book.suggest(mailbox, query, MAX_SUGGESTIONS)
    seen = {s.address.lower() for s in found if s.address}
    learn(mailbox, prefs)
    for c in (Correspondent.objects.filter(mailbox=mailbox)
              .filter(Q(address__istartswith=query) | Q(name__istartswith=query)
                      | Q(name__icontains=f" {query}") | Q(address__icontains=f".{query}"))
              .order_by("-score", "-last_seen")[:MAX_SUGGESTIONS]):
        if c.address.lower() not in seen:
            found.append(address_book.Suggestion(c.name, c.address))
    return found[:MAX_SUGGESTIONS]


def top_correspondents(mailbox: Mailbox, prefs: WebmailSettings,
                       limit: int = 200) -> list[tuple[str, str]]:
    """The most written-to correspondents as (name, address), for "add from correspondents"."""
    learn(mailbox, prefs)
    return list(Correspondent.objects.filter(mailbox=mailbox).order_by("-score", "-last_seen")
                .values_list("name", "address")[:limit])
