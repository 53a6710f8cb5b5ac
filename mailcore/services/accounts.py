"""Accounts: domains, mailboxes, passwords and alias expansion. The credential check every door
uses is in :mod:`mailcore.services.credentials`."""

from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction

from mailcore.exceptions import (
    AliasLoop,
    DomainNotFound,
    MailboxInactive,
    MailboxNotFound,
    MailError,
    RelayDenied,
    UnknownRecipient,
)
from mailcore.models import Alias, Domain, Folder, FolderRole, Mailbox, Subscription
from mailcore.models.domain import normalize_domain, validate_domain_name
from mailcore.trust import srs

# Folder names created with every mailbox, by role (RFC 6154 special-use).
SPECIAL_FOLDERS = [
    (FolderRole.INBOX, "INBOX"),
    (FolderRole.DRAFTS, "Drafts"),
    (FolderRole.SENT, "Sent"),
    (FolderRole.ARCHIVE, "Archive"),
    (FolderRole.JUNK, "Junk"),
    (FolderRole.TRASH, "Trash"),
]
MAX_ALIAS_DEPTH = 10
RECIPIENT_DELIMITER = "+"


def normalize_address(address: str) -> str:
    """Lower-case an address and strip angle brackets and spaces. Local parts are matched
    case-insensitively, as every common MTA does in practice."""
    return address.strip().strip("<>").strip().lower()


def split_address(address: str) -> tuple[str, str]:
    local, sep, domain = normalize_address(address).rpartition("@")
    if not sep or not local or not domain:
        raise UnknownRecipient(f"{address!r} is not an address")
    return local, normalize_domain(domain)


# --- Domains and mailboxes -------------------------------------------------------------------


def create_domain(name: str) -> Domain:
    """Create a local domain. Raises ``ValidationError`` for a bad name or a duplicate."""
    name = normalize_domain(name)
    validate_domain_name(name)
    if Domain.objects.filter(name=name).exists():
        raise ValidationError(f"Domain {name} already exists.")
    return Domain.objects.create(name=name)


@transaction.atomic
def create_mailbox(
    address: str,
    password: str | None,
    *,
    display_name: str = "",
    quota: int | None = None,
) -> Mailbox:
    """Create an account: its Django user (username = address), the mailbox and its special
    folders. Raises ``DomainNotFound`` when the domain is not local and ``ValidationError`` for a
    malformed or taken address. ``password=None`` makes an account that cannot log in."""
    address = normalize_address(address)
    try:
        validate_email(address)
    except ValidationError:
        raise ValidationError(f"{address!r} is not a valid email address.") from None
    local, domain_name = split_address(address)
    try:
        domain = Domain.objects.get(name=domain_name)
    except Domain.DoesNotExist:
        raise DomainNotFound(f"{domain_name} is not a local domain; create it first") from None
    user_model = get_user_model()
    if Mailbox.objects.filter(address=address).exists() or user_model.objects.filter(
        username=address
    ).exists():
        raise ValidationError(f"{address} already exists.")
    user = user_model(username=address, email=address)
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    user.save()
    mailbox = Mailbox(domain=domain, local_part=local, user=user, display_name=display_name)
    if quota is not None:
        mailbox.quota = quota
    mailbox.save()
    Folder.objects.bulk_create(
        [Folder(mailbox=mailbox, name=name, role=role) for role, name in SPECIAL_FOLDERS]
    )
    Subscription.objects.bulk_create(
        [Subscription(mailbox=mailbox, name=name) for _role, name in SPECIAL_FOLDERS]
    )
    return mailbox


def set_password(mailbox: Mailbox, password: str) -> None:
    user = mailbox.user
    user.set_password(password)
    user.save(update_fields=["password"])


def get_mailbox(address: str) -> Mailbox:
    try:
        return Mailbox.objects.select_related("domain", "user").get(
            address=normalize_address(address)
        )
    except Mailbox.DoesNotExist:
        raise MailboxNotFound(address) from None


def is_local_domain(domain: str) -> bool:
    return Domain.objects.filter(name=normalize_domain(domain), active=True).exists()


# --- Recipients -------------------------------------------------------------------------------


@dataclass
class Resolution:
    """Where mail for one address goes: local mailboxes (ids) and remote addresses."""

    mailbox_ids: list[int] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)


def resolve_recipient(address: str) -> Resolution:
    """Expand one envelope recipient of a local domain into mailboxes and remote addresses.

    Raises ``RelayDenied`` for a domain that is not local, ``UnknownRecipient`` for an unknown
    user, ``MailboxInactive`` for a disabled mailbox and ``AliasLoop`` for a loop. An exact mailbox
    wins over an alias, an alias over ``user+tag`` addressing, and that over a catch-all."""
    address = normalize_address(address)
    # Fast path, taken by almost every message: the address is an active mailbox.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT m.id FROM mailcore_mailbox m JOIN mailcore_domain d ON d.id = m.domain_id"
            " WHERE m.address = %s AND m.active AND d.active",
            [address],
        )
        row = cursor.fetchone()
    if row is not None:
        return Resolution(mailbox_ids=[row[0]])
    if srs.is_srs(address) and is_local_domain(address.rpartition("@")[2]):
        # A bounce of mail an alias forwarded (mailcore/trust/srs.py): back to its sender.
        original = srs.reverse(address, settings.SECRET_KEY)
        if original is None:
            raise UnknownRecipient(f"{address} is not a valid SRS address of ours")
        return Resolution(remote=[original])
    result = Resolution()
    seen: set[str] = set()
    _expand(address, result, seen, depth=0, top=True)
    if not result.mailbox_ids and not result.remote:
        # Only cycles lead nowhere: accepting would lose the message.
        raise AliasLoop(f"aliases of {address} lead only back to themselves")
    # One delivery per mailbox however many aliases lead there.
    result.mailbox_ids = list(dict.fromkeys(result.mailbox_ids))
    result.remote = list(dict.fromkeys(result.remote))
    return result


def _expand(address: str, result: Resolution, seen: set[str], depth: int, top: bool) -> None:
    if depth > MAX_ALIAS_DEPTH:
        raise AliasLoop()
    if address in seen:
        return  # a cycle reached again contributes nothing new
    seen.add(address)
    local, domain_name = split_address(address)
    try:
        domain = Domain.objects.get(name=domain_name, active=True)
    except Domain.DoesNotExist:
        if top:
            raise RelayDenied(f"{domain_name} is not a local domain") from None
        result.remote.append(address)
        return
    candidates = [local]
    if RECIPIENT_DELIMITER in local:
        candidates.append(local.split(RECIPIENT_DELIMITER, 1)[0])
    for candidate in candidates:
        mailbox = Mailbox.objects.filter(domain=domain, local_part=candidate).first()
        if mailbox is not None:
            if not mailbox.active:
                raise MailboxInactive(f"{mailbox.address} is disabled")
            result.mailbox_ids.append(mailbox.pk)
            return
        alias = Alias.objects.filter(domain=domain, local_part=candidate, active=True).first()
        if alias is not None:
            for destination in alias.destination_list:
                _expand(destination, result, seen, depth + 1, top=False)
            return
    catch_all = Alias.objects.filter(domain=domain, local_part="", active=True).first()
    if catch_all is not None:
        for destination in catch_all.destination_list:
            _expand(destination, result, seen, depth + 1, top=False)
        return
    raise UnknownRecipient(f"{address} is not known here")


def owned_addresses(mailbox: Mailbox) -> set[str]:
    """The addresses a user may send as: their mailbox, and every alias that delivers only to
    them."""
    addresses = {mailbox.address}
    for alias in Alias.objects.filter(active=True).select_related("domain"):
        if alias.local_part and alias.destination_list == [mailbox.address]:
            addresses.add(alias.source)
    return addresses


__all__ = [
    "MailError",
    "Resolution",
    "create_domain",
    "create_mailbox",
    "get_mailbox",
    "is_local_domain",
    "owned_addresses",
    "resolve_recipient",
    "set_password",
]
