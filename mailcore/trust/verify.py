"""``verify_inbound``: every sender-authentication check of one received message, DNS only, no
database: SPF for HELO and MAIL FROM (RFC 7208), each DKIM signature (RFC 6376), DMARC for the
author domain(s) (RFC 7489), the ARC chain (RFC 8617). Blocking work: callers run it in a
thread (``mailcore.trust.hook``), never on an event loop, except from cache alone.

The four are independent chains of DNS round trips until DMARC's verdict, which needs SPF and
DKIM's results but not to fetch its own record: when answers must be fetched, SPF runs in the
caller's thread while DKIM keys, DMARC records and the ARC chain are looked up in threads of
their own, so a message waits for the longest chain rather than the sum of them."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from mailcore.mime.addresses import parse_address_list
from mailcore.mime.headers import split_header_block
from mailcore.trust import dmarc as dmarc_mod
from mailcore.trust import spf
from mailcore.trust.authresults import build_header
from mailcore.trust.config import TrustConfig
from mailcore.trust.dmarc import DmarcResult
from mailcore.trust.dns import Resolver
from mailcore.trust.signatures import ArcResult, DkimResult, verify_arc, verify_dkim
from mailcore.trust.spf import SpfResult

# Author domains evaluated for one message (a From field may list several mailboxes).
MAX_AUTHOR_DOMAINS = 5
_ORDER = {"reject": 2, "quarantine": 1, "none": 0}
# Three side chains per message for each thread of the hook's pool (16): none waits for a
# thread while the message it belongs to holds one.
_chains = ThreadPoolExecutor(max_workers=48, thread_name_prefix="correio-dns")


@dataclass(frozen=True)
class SmtpFacts:
    """What the SMTP session knows about a message, as the checks need it."""

    peer_ip: str
    helo: str
    mail_from: str  # "" for the null sender <>
    recipients: tuple[str, ...]
    hostname: str  # our authserv-id (RFC 8601 §2.5)
    authenticated_user: str | None = None


@dataclass(frozen=True)
class AuthResults:
    spf_helo: SpfResult
    spf_mailfrom: SpfResult
    dkim: tuple[DkimResult, ...]
    dmarc: DmarcResult
    arc: ArcResult
    from_fields: int
    author_domains: tuple[str, ...]
    header: bytes = field(repr=False, default=b"")
    authors: tuple[str, ...] = ()
    dns_queries: int = 0
    cache_missed: bool = False  # cache_only and some answer was not cached: do not use


def author_domains(raw: bytes, headers: list | None = None
                   ) -> tuple[int, tuple[str, ...], tuple[str, ...]]:
    """(number of From fields, the distinct domains of their addresses, the addresses);
    ``headers``: ``split_header_block(raw)``'s fields when the caller has them."""
    if headers is None:
        headers, _ = split_header_block(raw)
    values = [value for name, value in headers if name.lower() == "from"]
    domains: list[str] = []
    addresses: list[str] = []
    for value in values:
        for _, address in parse_address_list(value):
            addresses.append(address.lower())
            domain = address.rpartition("@")[2].lower().rstrip(".")
            if domain and domain not in domains:
                domains.append(domain)
    return (len(values), tuple(domains[:MAX_AUTHOR_DOMAINS]),
            tuple(dict.fromkeys(addresses))[:MAX_AUTHOR_DOMAINS])


def verify_inbound(facts: SmtpFacts, raw: bytes, config: TrustConfig,
                   helo_result: SpfResult | None = None, *,
                   cache_only: bool = False, headers: list | None = None) -> AuthResults:
    """Run the checks; never raises for anything the message or DNS does (a defined result
    per method instead: temperror, permerror...). ``helo_result``: the HELO identity's result
    from an earlier message of the same session (same client address and HELO).
    ``cache_only``: answer from cached DNS only, never waiting (see ``AuthResults.cache_missed``).
    ``headers``: ``split_header_block(raw)``'s fields when the caller has them."""
    resolver = Resolver(config.nameservers, config.dns_timeout, cache_only=cache_only)
    if headers is None:
        headers, _ = split_header_block(raw)
    count, domains, authors = author_domains(raw, headers)

    def policies(branch: Resolver) -> list[dmarc_mod.PolicyLookup]:
        return [dmarc_mod.lookup_policy(branch, d) for d in domains]

    def arc_chain(branch: Resolver) -> ArcResult:
        return verify_arc(branch, raw, headers) if config.arc_sealers else ArcResult("none")

    def dkim_checks(branch: Resolver) -> list[DkimResult]:
        return verify_dkim(branch, raw, headers)

    side = (dkim_checks, policies, arc_chain)
    if cache_only:  # nothing to wait for: one after the other, in this thread
        branches = [resolver] * len(side)
        futures = None
    else:
        branches = [resolver.branch() for _ in side]
        futures = [_chains.submit(chain, branch) for chain, branch in zip(side, branches, strict=True)]
    helo = helo_result or spf.check_helo(resolver, facts.peer_ip, facts.helo)
    mailfrom = spf.check_mail_from(resolver, facts.peer_ip, facts.helo, facts.mail_from, helo)
    if futures is None:
        dkim, found, arc = (chain(branch) for chain, branch in zip(side, branches, strict=True))
    else:
        # Each chain ends by the shared deadline (every query gets what is left of it).
        dkim, found, arc = (future.result() for future in futures)
        resolver.absorb(*branches)
    results = [dmarc_mod.evaluate(resolver, d, mailfrom, dkim, f)
               for d, f in zip(domains, found, strict=True)]
    dmarc = _worst(results) if results else DmarcResult("none")
    header = build_header(facts.hostname, spf_helo=helo, spf_mailfrom=mailfrom,
                          mail_from=facts.mail_from, dkim=dkim, dmarc=dmarc, arc=arc)
    return AuthResults(helo, mailfrom, tuple(dkim), dmarc, arc, count, domains, header=header,
                       authors=authors, dns_queries=resolver.queries,
                       cache_missed=resolver.missed)


def _worst(results: list[DmarcResult]) -> DmarcResult:
    rank = {"temperror": 4, "fail": 3, "permerror": 2, "none": 1, "pass": 0}
    return max(results, key=lambda r: (rank.get(r.result, 1), _ORDER.get(r.policy, 0)))
