"""Per-user allow and block lists of senders (addresses or whole domains), for the MX's
inbound policy and the webmail's settings. A rule for an address wins over one for its domain;
a domain rule covers its subdomains too."""

from collections.abc import Iterable, Sequence

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from mailcore.models import Mailbox, SenderRule
from mailcore.models.domain import validate_domain_name

MAX_RULES = 1000


def check_sender_pattern(value: str) -> str:
    """A sender address or a domain, lower case; ``ValidationError`` otherwise."""
    value = (value or "").strip().lower().lstrip("@")
    if "@" in value:
        validate_email(value)
        return value
    try:
        validate_domain_name(value)
    except ValidationError:
        raise ValidationError("Enter an address (name@example.com) or a domain.") from None
    return value


def add_sender_rule(mailbox: Mailbox, pattern: str, kind: str) -> SenderRule:
    """Allow or block ``pattern`` for ``mailbox`` (replacing a rule for the same pattern)."""
    if kind not in (SenderRule.ALLOW, SenderRule.BLOCK):
        raise ValidationError("Choose allow or block.")
    pattern = check_sender_pattern(pattern)
    if SenderRule.objects.filter(mailbox=mailbox).count() >= MAX_RULES:
        raise ValidationError(f"At most {MAX_RULES} sender rules.")
    rule, _ = SenderRule.objects.update_or_create(mailbox=mailbox, pattern=pattern,
                                                  defaults={"kind": kind})
    return rule


def remove_sender_rule(mailbox: Mailbox, rule_id: int) -> bool:
    return SenderRule.objects.filter(mailbox=mailbox, pk=rule_id).delete()[0] > 0


def _candidates(address: str) -> list[str]:
    """The patterns that match ``address``, most specific first."""
    address = address.lower()
    domain = address.rpartition("@")[2]
    labels = domain.split(".")
    return [address] + [".".join(labels[i:]) for i in range(len(labels) - 1)]


def rules_for(mailbox_ids: Sequence[int], senders: Iterable[str]) -> dict[int, str]:
    """For each mailbox with a matching rule: "allow" or "block". Blocking wins when the
    envelope sender and the From address match different rules."""
    patterns: dict[str, int] = {}
    for sender in senders:
        if "@" in sender:
            for rank, pattern in enumerate(_candidates(sender)):
                patterns.setdefault(pattern, rank)
    if not patterns or not mailbox_ids:
        return {}
    found: dict[int, tuple[int, str]] = {}
    for mailbox_id, pattern, kind in SenderRule.objects.filter(
        mailbox_id__in=list(mailbox_ids), pattern__in=list(patterns)
    ).values_list("mailbox_id", "pattern", "kind"):
        rank = patterns[pattern]
        best = found.get(mailbox_id)
        if best is None or rank < best[0] or (rank == best[0] and kind == SenderRule.BLOCK):
            found[mailbox_id] = (rank, kind)
    return {mailbox_id: kind for mailbox_id, (_, kind) in found.items()}
