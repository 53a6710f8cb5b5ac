"""The DNS resolver of sender authentication: SPF (RFC 7208), DKIM keys (RFC 6376 §3.6.2),
DMARC records (RFC 7489 §6.1) and ARC keys (RFC 8617) are all looked up through one
:class:`Resolver` per message.

The resolver asks ``CORREIO_DNS_NAMESERVERS`` when set (``ip`` or ``ip:port``), the system's
otherwise, and carries a per-message budget: every query gets what is left of it, and a query
that cannot be answered within it raises :class:`DnsTempError`, which the verifiers turn into
``temperror`` and the listener into 451 4.4.3 (RFC 7208 §2.6.6, RFC 7489 §6.6.3). Answers are
bounded (records per answer, bytes per TXT record) so a hostile zone cannot make us hold or
parse megabytes."""

import threading
import time
from functools import lru_cache

import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver

# A TXT answer with more records than this, or a record longer than this, is cut: SPF and DMARC
# records are one string of a few hundred octets, DKIM keys about 800 for RSA-4096.
MAX_RECORDS = 32
MAX_TXT_BYTES = 8192


class DnsTempError(Exception):
    """The resolver gave no answer in time (timeout, SERVFAIL, no server): try again later."""


def parse_nameserver(value: str) -> tuple[str, int]:
    """``ip``, ``ip:port`` or ``[ipv6]:port`` -> (address, port)."""
    value = value.strip()
    if value.startswith("["):
        host, _, port = value[1:].partition("]")
        return host, int(port.lstrip(":") or 53)
    if value.count(":") == 1:
        host, _, port = value.partition(":")
        return host, int(port)
    return value, 53


@lru_cache(maxsize=8)
def _resolver(nameservers: tuple[str, ...]) -> dns.resolver.Resolver:
    resolver = dns.resolver.Resolver(configure=not nameservers)
    if nameservers:
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(*parse_nameserver(ns)) for ns in nameservers
        ]
    resolver.cache = dns.resolver.LRUCache(4096)
    return resolver


# Answers kept by this process, in front of dnspython's cache: a hit there still costs a name
# parse and a resolution object (about 0.2 ms each, four to six per message); here it is a
# dictionary read. Within each answer's TTL (RFC 1035 §3.2.1), at most a day, never past
# MAX_CACHED entries (the oldest half is dropped when full).
MAX_CACHED = 4096
MAX_TTL = 86400
_answers: dict[tuple, tuple[float, list]] = {}
_answers_lock = threading.Lock()


def _cached(key: tuple) -> tuple[float, list] | None:
    hit = _answers.get(key)
    if hit is None or hit[0] <= time.monotonic():
        return None
    return hit[0], list(hit[1])


def _remember(key: tuple, records: list, ttl: float) -> float:
    """Keep the answer for ``ttl`` seconds; returns until when (now: not kept)."""
    now = time.monotonic()
    if ttl <= 0:
        return now
    expires = now + min(ttl, MAX_TTL)
    with _answers_lock:
        if len(_answers) >= MAX_CACHED:
            for old in list(_answers)[: MAX_CACHED // 2]:
                del _answers[old]
        _answers[key] = (expires, records)
    return expires


def _negative_ttl(error: dns.resolver.NXDOMAIN) -> float:
    """How long an NXDOMAIN may be reused: the SOA's TTL, at most its MINIMUM (RFC 2308 §5);
    0 (not at all) when the answer carried no SOA."""
    try:
        for response in error.responses().values():
            for rrset in response.authority:
                if rrset.rdtype == dns.rdatatype.SOA:
                    return min(rrset.ttl, rrset[0].minimum)
    except (AttributeError, IndexError, KeyError):
        pass
    return 0


class Resolver:
    """Look-ups for one message, all within ``budget`` seconds from creation. Not shared
    between threads: checks that run at once each take a ``branch()``."""

    def __init__(self, nameservers: tuple[str, ...] = (), budget: float = 5.0, *,
                 cache_only: bool = False):
        self.nameservers = tuple(nameservers)
        self._resolver = _resolver(self.nameservers)
        self._deadline = time.monotonic() + budget
        self.queries = 0
        # cache_only: never wait on the network; a name not in the cache is a temporary error
        # and ``missed`` says the results are not to be used (the caller asks again, allowed
        # to wait, from a thread).
        self.cache_only = cache_only
        self.missed = False
        # The earliest moment an answer given out since ``mark()`` stops being valid: a result
        # computed from those answers (an SPF verdict) may be reused until then, not longer.
        self.valid_until = float("inf")

    def branch(self) -> "Resolver":
        """A resolver for a check running at the same time, within the same deadline."""
        other = Resolver(self.nameservers, 0, cache_only=self.cache_only)
        other._deadline = self._deadline
        return other

    def absorb(self, *branches: "Resolver") -> None:
        """Count the branches' queries and misses as this resolver's."""
        for other in branches:
            self.queries += other.queries
            self.missed = self.missed or other.missed

    def mark(self) -> None:
        self.valid_until = float("inf")

    def _used(self, until: float) -> None:
        self.valid_until = min(self.valid_until, until)

    def remaining(self) -> float:
        return self._deadline - time.monotonic()

    def query(self, name: str, rdtype: str) -> list:
        """The records of ``name``/``rdtype`` (at most ``MAX_RECORDS``); [] for NXDOMAIN or
        no data; ``DnsTempError`` when no answer comes within the budget."""
        left = self.remaining()
        if left <= 0:
            raise DnsTempError(f"DNS budget exhausted before {name} {rdtype}")
        self.queries += 1
        key = (self._resolver, name.lower(), rdtype)
        hit = _cached(key)
        if hit is not None:
            self._used(hit[0])
            return hit[1]
        if self.cache_only:
            self.missed = True
            raise DnsTempError(f"{name} {rdtype} not cached")
        try:
            answer = self._resolver.resolve(
                name, rdtype, lifetime=left, raise_on_no_answer=False, search=False
            )
        except dns.resolver.NXDOMAIN as error:
            self._used(_remember(key, [], _negative_ttl(error)))
            return []
        except dns.resolver.NoAnswer:
            self._used(time.monotonic())
            return []
        except dns.exception.Timeout as error:
            raise DnsTempError(f"DNS timeout for {name} {rdtype}") from error
        except dns.resolver.NoNameservers as error:
            raise DnsTempError(f"DNS failure for {name} {rdtype}") from error
        except (dns.resolver.YXDOMAIN, dns.name.NameTooLong, dns.name.EmptyLabel,
                dns.name.LabelTooLong, UnicodeError, ValueError):
            self._used(time.monotonic())
            return []
        except dns.exception.DNSException as error:
            raise DnsTempError(f"DNS error for {name} {rdtype}: {error}") from error
        ttl = answer.expiration - time.time()
        if answer.rrset is None:  # no data: negative caching (RFC 2308 §5)
            self._used(_remember(key, [], ttl))
            return []
        records = list(answer.rrset)[:MAX_RECORDS]
        self._used(_remember(key, records, min(ttl, answer.rrset.ttl)))
        return list(records)

    def txt(self, name: str) -> list[bytes]:
        """Each TXT record of ``name`` with its strings joined (RFC 7208 §3.3)."""
        return [b"".join(r.strings)[:MAX_TXT_BYTES] for r in self.query(name, "TXT")]
