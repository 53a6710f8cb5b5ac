"""Who a user knows, for the MX's lookalike check (``mailcore.trust.lookalike``): the
correspondents the webmail has learnt (``Correspondent``, written to or heard from often
enough), and the recipients of the newest messages in the Sent folder, which count at once,
before any learning step has seen them. Read-only and bounded: at most ``MAX_KNOWN`` learnt
rows and ``RECENT_SENT`` Sent rows per mailbox."""

from dataclasses import dataclass

from mailcore.mime.addresses import parse_address_list
from mailcore.models import Correspondent, Folder, FolderRole, Mailbox, Message

# A correspondent is "known" from this score: one message sent to them (it counts this much), or
# this many received from them; one message from a stranger does not make the stranger known.
KNOWN_SCORE = 5
MAX_KNOWN = 500
RECENT_SENT = 200


@dataclass(frozen=True)
class KnownPeople:
    """(address, name) pairs of the people a user knows, and the user's own domain."""

    people: tuple[tuple[str, str], ...]
    own_domain: str


def known_people(mailbox_ids: tuple[int, ...]) -> dict[int, KnownPeople]:
    """For each mailbox in ``mailbox_ids``, the people its user knows (missing: no mailbox)."""
    found: dict[int, KnownPeople] = {}
    sent = dict(Folder.objects.filter(mailbox_id__in=mailbox_ids, role=FolderRole.SENT)
                .values_list("mailbox_id", "pk"))
    for mailbox_id, address in Mailbox.objects.filter(pk__in=mailbox_ids).values_list(
            "pk", "address"):
        people = dict(
            Correspondent.objects.filter(mailbox_id=mailbox_id, score__gte=KNOWN_SCORE)
            .order_by("-score", "-last_seen").values_list("address", "name")[:MAX_KNOWN])
        if mailbox_id in sent:
            for to_addrs, cc_addrs in (
                    Message.objects.filter(folder_id=sent[mailbox_id])
                    .order_by("-internal_date", "-id")
                    .values_list("to_addrs", "cc_addrs")[:RECENT_SENT]):
                for name, addr in parse_address_list(f"{to_addrs}, {cc_addrs}"):
                    addr = addr.strip().lower()
                    if len(people) >= MAX_KNOWN:
                        break
                    if addr and not people.get(addr):
                        people[addr] = name
        people.pop(address.lower(), None)
        found[mailbox_id] = KnownPeople(tuple(people.items()), address.rpartition("@")[2])
    return found
