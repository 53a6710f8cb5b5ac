"""DMARC (RFC 7489): the policy record of the author's domain, identifier alignment and the
result.

The author domain is that of the From field (RFC 7489 §3.1.1, §6.6.1). The record is looked
up at ``_dmarc.<domain>`` and, when there is none, at ``_dmarc.<organizational domain>``
(§6.6.3), the organizational domain coming from the Public Suffix List (§3.2). DMARC passes
when SPF or DKIM passes for an identifier aligned with the author domain, relaxed (same
organizational domain) or strict (equal) per ``aspf``/``adkim`` (§3.1)."""

import random
from dataclasses import dataclass
from functools import lru_cache

from mailcore.trust.dns import DnsTempError, Resolver
from mailcore.trust.signatures import DkimResult
from mailcore.trust.spf import SpfResult

POLICIES = ("none", "quarantine", "reject")


@lru_cache(maxsize=1)
def _psl():
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


@lru_cache(maxsize=4096)
def organizational_domain(domain: str) -> str:
    """RFC 7489 §3.2: the registered domain (one label below the public suffix)."""
    domain = domain.lower().rstrip(".")
    return _psl().privatesuffix(domain) or domain


@dataclass(frozen=True)
class DmarcRecord:
    policy: str = "none"
    subdomain_policy: str | None = None
    adkim: str = "r"
    aspf: str = "r"
    pct: int = 100


@dataclass(frozen=True)
class DmarcResult:
    """``result``: pass, fail, none (no record or no author domain), temperror, permerror.
    ``policy`` is what the domain asks for this message (none when it passed)."""

    result: str
    domain: str = ""
    policy: str = "none"
    published: str = "none"  # the p= (or sp=) found, for the Authentication-Results comment


def parse_record(text: bytes) -> DmarcRecord | None:
    """A DMARC record (RFC 7489 §6.3) or None when ``text`` is not one. Unknown tags are
    ignored; a bad p= makes it no record, bad optional values fall back to defaults (§6.6.3)."""
    try:
        value = text.decode("ascii")
    except UnicodeDecodeError:
        return None
    parts = [part.strip() for part in value.split(";")]
    if not parts or parts[0].replace(" ", "") != "v=DMARC1":
        return None
    tags = {}
    for part in parts[1:]:
        name, sep, tag_value = part.partition("=")
        if sep:
            tags.setdefault(name.strip().lower(), tag_value.strip().lower())
    policy = tags.get("p")
    if policy not in POLICIES:
        return None
    sub = tags.get("sp")
    try:
        pct = min(max(int(tags.get("pct", "100")), 0), 100)
    except ValueError:
        pct = 100
    return DmarcRecord(
        policy=policy,
        subdomain_policy=sub if sub in POLICIES else None,
        adkim="s" if tags.get("adkim") == "s" else "r",
        aspf="s" if tags.get("aspf") == "s" else "r",
        pct=pct,
    )


def _find_record(resolver: Resolver, domain: str) -> tuple[DmarcRecord | None, bool]:
    """(record, found at the organizational domain). Several records mean none (§6.6.3)."""
    for name, at_org in ((domain, False), (organizational_domain(domain), True)):
        if at_org and name == domain:
            break
        records = [r for r in (parse_record(t) for t in resolver.txt(f"_dmarc.{name}")) if r]
        if len(records) == 1:
            return records[0], at_org
    return None, False


def aligned(identifier: str, author: str, mode: str) -> bool:
    identifier, author = identifier.lower().rstrip("."), author.lower().rstrip(".")
    if not identifier or not author:
        return False
    if mode == "s":
        return identifier == author
    return organizational_domain(identifier) == organizational_domain(author)


@dataclass(frozen=True)
class PolicyLookup:
    """The DNS half of DMARC for one author domain, which needs neither SPF nor DKIM and so
    runs while they do: its record (None: no record), whether found at the organizational
    domain, and whether DNS failed to answer."""

    record: DmarcRecord | None
    at_org: bool = False
    temperror: bool = False


def lookup_policy(resolver: Resolver, author_domain: str) -> PolicyLookup:
    try:
        return PolicyLookup(*_find_record(resolver, author_domain))
    except DnsTempError:
        return PolicyLookup(None, temperror=True)


def evaluate(resolver: Resolver, author_domain: str, spf: SpfResult,
             dkim: list[DkimResult], found: PolicyLookup | None = None) -> DmarcResult:
    """The DMARC result of ``author_domain``; ``found``: its policy when already looked up."""
    if not author_domain:
        return DmarcResult("none")
    if found is None:
        found = lookup_policy(resolver, author_domain)
    if found.temperror:
        return DmarcResult("temperror", author_domain)
    record, at_org = found.record, found.at_org
    if record is None:
        return DmarcResult("none", author_domain)
    policy = record.policy
    if at_org and record.subdomain_policy:
        policy = record.subdomain_policy
    spf_ok = spf.result == "pass" and aligned(spf.domain, author_domain, record.aspf)
    dkim_ok = any(
        d.result == "pass" and aligned(d.domain, author_domain, record.adkim) for d in dkim
    )
    if spf_ok or dkim_ok:
        return DmarcResult("pass", author_domain, "none", policy)
    if any(d.result == "temperror" for d in dkim) or spf.result == "temperror":
        # Might have passed with an answer: fail later rather than refuse now (§6.6.2).
        return DmarcResult("temperror", author_domain, "none", policy)
    applied = policy
    # §6.6.4: outside the pct sample, the next milder policy applies.
    if record.pct < 100 and random.randrange(100) >= record.pct:
        applied = {"reject": "quarantine", "quarantine": "none"}.get(policy, policy)
    return DmarcResult("fail", author_domain, applied, policy)
