"""The DNS resolver of sender authentication: SPF (RFC 7208), DKIM keys (RFC 6376 §3.6.2),
DMARC records (RFC 7489 §6.1) and ARC keys (RFC 8617) are all looked up through one
:class:`Resolver` per message.

The resolver asks ``CORREIO_DNS_NAMESERVERS`` when set (``ip`` or ``ip:port``), the system's
otherwise, and carries a per-message budget: every query gets what is left of it, and a query
that cannot be answered within it raises :class:`DnsTempError`, which the verifiers turn into
``temperror`` and the listener into 451 4.4.3 (RFC 7208 §2.6.6, RFC 7489 §6.6.3). Answers are
bounded (records per answer, bytes per TXT record) so a hostile zone cannot make us hold or
parse megabytes."""

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


class Resolver:
    """Look-ups for one message, all within ``budget`` seconds from creation."""

    def __init__(self, nameservers: tuple[str, ...] = (), budget: float = 5.0):
        self._resolver = _resolver(tuple(nameservers))
        self._deadline = time.monotonic() + budget
        self.queries = 0

    def remaining(self) -> float:
        return self._deadline - time.monotonic()

    def query(self, name: str, rdtype: str) -> list:
        """The records of ``name``/``rdtype`` (at most ``MAX_RECORDS``); [] for NXDOMAIN or
        no data; ``DnsTempError`` when no answer comes within the budget."""
        left = self.remaining()
        if left <= 0:
            raise DnsTempError(f"DNS budget exhausted before {name} {rdtype}")
        self.queries += 1
        try:
            answer = self._resolver.resolve(
                name, rdtype, lifetime=left, raise_on_no_answer=False, search=False
            )
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.Timeout as error:
            raise DnsTempError(f"DNS timeout for {name} {rdtype}") from error
        except dns.resolver.NoNameservers as error:
            raise DnsTempError(f"DNS failure for {name} {rdtype}") from error
        except (dns.resolver.YXDOMAIN, dns.name.NameTooLong, dns.name.EmptyLabel,
                dns.name.LabelTooLong, UnicodeError, ValueError):
            return []
        except dns.exception.DNSException as error:
            raise DnsTempError(f"DNS error for {name} {rdtype}: {error}") from error
        if answer.rrset is None:
            return []
        return list(answer.rrset)[:MAX_RECORDS]

    def txt(self, name: str) -> list[bytes]:
        """Each TXT record of ``name`` with its strings joined (RFC 7208 §3.3)."""
        return [b"".join(r.strings)[:MAX_TXT_BYTES] for r in self.query(name, "TXT")]
