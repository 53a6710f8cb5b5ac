"""What Correio does with a message given its authentication results (``decide``), and the
replies that says so on the wire.

In order: no DNS answer -> 451 4.4.3 (RFC 7489 §6.6.3: a temporary error is not a verdict);
more than one From field -> 550 5.7.1 (RFC 5322 §3.6 allows one, RFC 7489 §6.6.1 lets the
receiver refuse); a DMARC failure whose domain asks for reject -> 550 5.7.1 naming DMARC,
quarantine -> Junk (§6.3), unless a trusted ARC sealer vouches for it (RFC 8617 §7.2); one of
our own domains as the envelope sender without SPF pass, or as the author without DMARC pass,
from a client that did not authenticate -> 550 5.7.1 (nobody outside may send as us); SPF fail
without DMARC -> marked in Authentication-Results only, or refused when
``CORREIO_SPF_FAIL_REJECT`` (RFC 7208 §8.4). Then rspamd's action, when it scanned the
message: reject -> 550 5.7.1, soft reject and greylist -> 451 4.7.1, add header and rewrite
subject -> Junk; not scanned (down, slow) -> accepted and marked. ``decide`` is pure: which of
the sender's domains are ours, and the recipients' sender lists, are asked beforehand
(``lookup``, through the service layer)."""

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from mailcore.models import Correspondent
from mailcore.services.accounts import is_local_domain
from mailcore.services.correspondents import KNOWN_SCORE, known_people
from mailcore.services.sender_rules import rules_for
from mailcore.trust.config import TrustConfig
from mailcore.trust.lookalike import Known, Lookalike, find_lookalike
from mailcore.trust.rspamd import SpamResult
from mailcore.trust.verify import AuthResults, SmtpFacts

ACCEPT, JUNK, REJECT, TEMPFAIL = "accept", "junk", "reject", "tempfail"

DNS_TEMPFAIL = "451 4.4.3 Error: sender authentication DNS lookup failed, try again later"
MULTIPLE_FROM = "550 5.7.1 Error: message has more than one From field (RFC 5322 3.6)"
DMARC_REJECT = "550 5.7.1 Error: rejected by the DMARC policy of {domain}"
SPOOFED_LOCAL = "550 5.7.1 Error: {what} {domain} is ours; authenticate to send as it"
SPF_FAIL = "550 5.7.1 Error: SPF of {domain} does not allow this host (RFC 7208 8.4)"
SPAM_REJECT = "550 5.7.1 Error: message refused as spam"
SPAM_SOFT_REJECT = "451 4.7.1 Error: message deferred by the spam filter, try again later"
GREYLISTED = "451 4.7.1 Error: greylisted, try again later"
SPAM_REPLIES = {"reject": SPAM_REJECT, "soft reject": SPAM_SOFT_REJECT, "greylist": GREYLISTED}
SPAM_JUNK = ("add header", "rewrite subject")
BLOCKED = "550 5.7.1 Error: the recipient does not accept mail from this sender"


@dataclass(frozen=True)
class Verdict:
    action: str  # accept, junk, reject, tempfail
    reply: str | None = None
    reasons: tuple[str, ...] = ()


def local_domains(domains: Iterable[str]) -> frozenset[str]:
    """Which of ``domains`` are Correio's (a service-layer read)."""
    return frozenset(d for d in domains if is_local_domain(d))


@dataclass(frozen=True)
class Lookup:
    """What the database says about a message's senders: which of the candidate domains are
    ours, the recipients' allow/block rules for the senders, and for each recipient whose
    user knows someone the author imitates, how (``mailcore.trust.lookalike``)."""

    ours: frozenset[str]
    rules: dict[int, str]
    lookalikes: dict[int, Lookalike] = field(default_factory=dict)


# Each recipient's known correspondents, prepared (``Known``) and reused this long: a burst of
# mail to one user prepares them once, and someone the user just wrote to counts within it.
KNOWN_TTL = 10.0
MAX_KNOWN_CACHED = 1024
_known: dict[int, tuple[float, Known]] = {}


def _known_sets(mailbox_ids: tuple[int, ...]) -> dict[int, Known]:
    now = time.monotonic()
    sets = {m: hit[1] for m in mailbox_ids if (hit := _known.get(m)) and hit[0] > now}
    missing = tuple(m for m in mailbox_ids if m not in sets)
    if missing:
        if len(_known) >= MAX_KNOWN_CACHED:
            _known.clear()
        for mailbox_id, people in known_people(missing).items():
            sets[mailbox_id] = Known(people.people, [people.own_domain])
            _known[mailbox_id] = (now + KNOWN_TTL, sets[mailbox_id])
    return sets


def forget_known() -> None:
    """Drop the prepared known correspondents (tests that rebuild the database use this)."""
    _known.clear()


def lookup(candidates: tuple[str, ...], mailbox_ids: tuple[int, ...],
           senders: tuple[str, ...], author: tuple[str, str] | None = None) -> Lookup:
    """One service call for what the decision needs from the database (see ``Lookup``);
    ``author``: the (display name, address) of the message's From."""
    lookalikes = {}
    if author and author[1]:
        for mailbox_id, known in _known_sets(mailbox_ids).items():
            found = find_lookalike(author[0], author[1], known)
            # Known after all, beyond the MAX_KNOWN prepared: no warning.
            if found and not Correspondent.objects.filter(
                    mailbox_id=mailbox_id, address=found.from_addr,
                    score__gte=KNOWN_SCORE).exists():
                lookalikes[mailbox_id] = found
    return Lookup(local_domains(candidates), rules_for(mailbox_ids, senders), lookalikes)


def junk_mailboxes(verdict: Verdict, auth: AuthResults, mailbox_ids: tuple[int, ...],
                   rules: dict[int, str]) -> frozenset[int] | None:
    """The recipients whose copy goes into Junk; None when every recipient blocks the sender
    (then the message is refused). A block always applies; an allow only for an authenticated
    sender (DMARC pass, or SPF pass where the domain has no DMARC), or a spoofer would just
    forge an allowed address."""
    authenticated = auth.dmarc.result == "pass" or (
        auth.dmarc.result == "none" and auth.spf_mailfrom.result == "pass")
    junk = set()
    for mailbox_id in mailbox_ids:
        rule = rules.get(mailbox_id)
        if rule == "block" or (verdict.action == JUNK
                               and not (rule == "allow" and authenticated)):
            junk.add(mailbox_id)
    if mailbox_ids and all(rules.get(m) == "block" for m in mailbox_ids):
        return None
    return frozenset(junk)


def decide(facts: SmtpFacts, auth: AuthResults, config: TrustConfig,
           spam: SpamResult | None = None, ours: frozenset[str] = frozenset()) -> Verdict:
    """``ours``: which of the envelope sender's and the author's domains are ours."""
    verdict = _authentication(facts, auth, config, ours)
    if spam is None or verdict.action in (REJECT, TEMPFAIL):
        return verdict
    if not spam.scanned:
        return Verdict(verdict.action, None, verdict.reasons + ("not scanned for spam",))
    spam_reason = f"spam score {spam.score:g}/{spam.required:g}: {spam.action}"
    if spam.action in SPAM_REPLIES:
        action = REJECT if spam.action == "reject" else TEMPFAIL
        return Verdict(action, SPAM_REPLIES[spam.action], verdict.reasons + (spam_reason,))
    if spam.action in SPAM_JUNK:
        return Verdict(JUNK, None, verdict.reasons + (spam_reason,))
    return verdict


def _authentication(facts: SmtpFacts, auth: AuthResults, config: TrustConfig,
                    ours: frozenset[str]) -> Verdict:
    dmarc, mailfrom = auth.dmarc, auth.spf_mailfrom
    if dmarc.result == "temperror" or (mailfrom.result == "temperror" and dmarc.result != "pass"):
        return Verdict(TEMPFAIL, DNS_TEMPFAIL, ("DNS did not answer in time",))
    if auth.from_fields > 1:
        return Verdict(REJECT, MULTIPLE_FROM, ("more than one From field",))
    arc_vouches = auth.arc.result == "pass" and auth.arc.sealer in config.arc_sealers
    if dmarc.result == "fail" and dmarc.policy != "none":
        if arc_vouches:
            reasons = (f"DMARC failed for {dmarc.domain}; trusted ARC sealer {auth.arc.sealer}",)
        elif dmarc.policy == "reject":
            return Verdict(REJECT, DMARC_REJECT.format(domain=dmarc.domain),
                           (f"DMARC policy reject of {dmarc.domain}",))
        else:
            return Verdict(JUNK, None, (f"DMARC policy quarantine of {dmarc.domain}",))
    else:
        reasons = ()
    if not facts.authenticated_user:
        sender_domain = facts.mail_from.rpartition("@")[2].lower()
        if sender_domain and mailfrom.result != "pass" and sender_domain in ours:
            return Verdict(REJECT, SPOOFED_LOCAL.format(what="sender domain",
                                                        domain=sender_domain),
                           (f"unauthenticated sender in our domain {sender_domain}",))
        for domain in auth.author_domains:
            if dmarc.result != "pass" and domain in ours:
                return Verdict(REJECT, SPOOFED_LOCAL.format(what="From domain", domain=domain),
                               (f"unauthenticated From in our domain {domain}",))
    if mailfrom.result == "fail" and dmarc.result == "none":
        if config.spf_fail_reject:
            return Verdict(REJECT, SPF_FAIL.format(domain=mailfrom.domain),
                           (f"SPF fail for {mailfrom.domain}",))
        reasons += (f"SPF fail for {mailfrom.domain}",)
    return Verdict(ACCEPT, None, reasons)
