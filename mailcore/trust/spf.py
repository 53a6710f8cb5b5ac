"""SPF (RFC 7208) for the HELO and MAIL FROM identities, with pyspf.

pyspf does its DNS through one module-level function; we replace it once with one that asks
the current message's :class:`~mailcore.trust.dns.Resolver` (held per thread, since checks of
several messages run at once in a thread pool). pyspf enforces the limits of RFC 7208 §4.6.4
(10 look-ups with DNS work, 2 void look-ups) and reports ``permerror`` past them; a resolver
that does not answer becomes ``temperror`` (§2.6.6).

A verdict is a function of (client address, sender, HELO) and the DNS answers it read, so it
is reused for the same three until the first of those answers expires (their TTLs, as the
resolver's cache keeps them): a burst from one sender costs one evaluation, not one per
message (pyspf's parse and walk is half a millisecond of the MX's GIL). Temporary errors are
never reused."""

import ipaddress
import logging
import threading
import time
from dataclasses import dataclass

import spf as pyspf

from mailcore.trust.dns import DnsTempError, Resolver

logger = logging.getLogger("correio.trust")
_current = threading.local()


def _lookup(name, qtype, strict=True, timeout=None):
    resolver: Resolver | None = getattr(_current, "resolver", None)
    if resolver is None:
        raise pyspf.TempError("no resolver for this thread")
    try:
        records = resolver.query(name, qtype)
    except DnsTempError as error:
        raise pyspf.TempError(f"DNS {error}") from error
    found = []
    for rdata in records:
        if qtype in ("A", "AAAA"):
            found.append(((name, qtype), rdata.address))
        elif qtype == "MX":
            found.append(((name, qtype), (rdata.preference, rdata.exchange)))
        elif qtype == "PTR":
            found.append(((name, qtype), rdata.target.to_text(True)))
        elif qtype in ("TXT", "SPF"):
            found.append(((name, qtype), rdata.strings))
    return found


pyspf.DNSLookup = _lookup


@dataclass(frozen=True)
class SpfResult:
    """One SPF check: ``result`` is one of RFC 7208 §2.6 (pass, fail, softfail, neutral, none,
    temperror, permerror); ``domain`` the domain checked."""

    identity: str  # "helo" or "mailfrom"
    domain: str
    result: str
    explanation: str = ""


MAX_VERDICTS = 4096
_verdicts: dict[tuple, tuple[float, SpfResult]] = {}
_verdicts_lock = threading.Lock()


def _check(resolver: Resolver, ip: str, sender: str, helo: str, identity: str) -> SpfResult:
    key = (resolver.nameservers, ip, sender.lower(), helo.lower(), identity)
    hit = _verdicts.get(key)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    resolver.mark()
    result = _evaluate(resolver, ip, sender, helo, identity)
    if (result.result != "temperror" and not resolver.missed
            and resolver.valid_until > time.monotonic()):
        with _verdicts_lock:
            if len(_verdicts) >= MAX_VERDICTS:
                _verdicts.clear()
            _verdicts[key] = (resolver.valid_until, result)
    return result


def _evaluate(resolver: Resolver, ip: str, sender: str, helo: str, identity: str) -> SpfResult:
    domain = sender.rpartition("@")[2].lower()
    _current.resolver = resolver
    try:
        result, _code, explanation = pyspf.query(
            i=ip, s=sender, h=helo, timeout=max(resolver.remaining(), 0.01)
        ).check()
    except Exception:  # pyspf must never take the listener down: a defined verdict instead
        logger.exception("SPF check of %s failed", domain)
        result, explanation = "permerror", "SPF evaluation error"
    finally:
        _current.resolver = None
    return SpfResult(identity, domain, str(result), str(explanation)[:200])


def _is_domain(name: str) -> bool:
    if not name or "." not in name or name.startswith("["):
        return False
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return True
    return False


def check_helo(resolver: Resolver, ip: str, helo: str) -> SpfResult:
    """RFC 7208 §2.3: the HELO identity, checked as ``postmaster@helo``; an address literal or
    a name without a dot has no SPF record to check (``none``)."""
    helo = (helo or "").strip().lower()
    if not _is_domain(helo):
        return SpfResult("helo", helo, "none")
    return _check(resolver, ip, f"postmaster@{helo}", helo, "helo")


def check_mail_from(resolver: Resolver, ip: str, helo: str, mail_from: str,
                    helo_result: SpfResult | None = None) -> SpfResult:
    """RFC 7208 §2.4: the MAIL FROM identity; for the null sender ``<>`` it is the HELO's."""
    if not mail_from:
        result = helo_result or check_helo(resolver, ip, helo)
        return SpfResult("mailfrom", result.domain, result.result, result.explanation)
    if "@" not in mail_from:
        return SpfResult("mailfrom", "", "none")
    return _check(resolver, ip, mail_from, helo or "unknown", "mailfrom")
