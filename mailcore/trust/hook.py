"""The calls the SMTP DATA handler makes into inbound trust: ``screen_inbound`` before storing,
``record_screened`` after.

Verification and the spam scan are blocking DNS and HTTP work, so they run in a thread pool of
their own (a slow resolver or rspamd must not starve the database pool that stores mail),
bounded by their budgets plus a margin: the client waits at most that long before it hears
451 4.4.3. Whether a sender's domain is ours, and the recipients' sender lists, are asked
through the service adapter at the same time; the decision itself is pure and cheap."""

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from mailcore.mime.addresses import parse_address_list
from mailcore.mime.headers import split_header_block
from mailcore.protocols.common.services import call_service
from mailcore.services.quarantine import LookalikeRecord, VerdictRecord, record_verdict
from mailcore.trust import rspamd, spamheader
from mailcore.trust.authresults import strip_ours
from mailcore.trust.config import TrustConfig
from mailcore.trust.policy import (
    BLOCKED,
    DNS_TEMPFAIL,
    SPAM_REPLIES,
    Lookup,
    Verdict,
    decide,
    forget_known,
    junk_mailboxes,
    lookup,
)
from mailcore.trust.spf import SpfResult
from mailcore.trust.verify import AuthResults, SmtpFacts, author_domains, verify_inbound

logger = logging.getLogger("correio.trust")
# A message this small whose DNS answers are all cached is verified on the event loop (about
# 1 ms of CPU, the same the pool thread would take under the same lock) instead of waiting for
# a thread: under load the hand-off, not the check, was most of the added latency. Anything
# not cached, larger, or to be scanned by rspamd goes to the pool.
INLINE_MAX_BYTES = 128 * 1024
# What the database says about a message's senders (our domains, the recipients' allow/block
# rules), reused for this long: a burst from one sender costs one query, and a rule or domain
# changed in the webmail takes effect at the MX within it.
LOOKUP_TTL = 10.0
MAX_LOOKUPS = 4096
_lookups: dict[tuple, tuple[float, Lookup]] = {}
_executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="correio-trust")
# Beyond the DNS and rspamd budgets: CPU time of RSA checks and parsing on a busy machine.
MARGIN = 2.0


@dataclass(frozen=True)
class Screened:
    """``reply``: refuse with it (None = accept); ``raw``: the message to store, with our
    Authentication-Results first and forged ones gone; ``junk_ids``: the recipients' mailboxes
    whose copy goes into Junk (the others' into the INBOX);
    ``record``: the verdict to keep with the stored message (None = nothing worth keeping)."""

    reply: str | None
    raw: bytes
    junk_ids: frozenset[int] = frozenset()
    verdict: Verdict | None = None
    record: VerdictRecord | None = None


def _check(facts: SmtpFacts, raw: bytes, config: TrustConfig, helo_result: SpfResult | None,
           headers: list) -> tuple[AuthResults, bytes, rspamd.SpamResult | None]:
    auth = verify_inbound(facts, raw, config, helo_result, headers=headers)
    screened = auth.header + spamheader.strip(strip_ours(raw, facts.hostname))
    spam = None
    if config.rspamd_url:
        spam = rspamd.check_message(
            config.rspamd_url, screened, ip=facts.peer_ip, helo=facts.helo,
            mail_from=facts.mail_from, recipients=facts.recipients,
            user=facts.authenticated_user, hostname=facts.hostname,
            timeout=config.rspamd_timeout)
        if spam.scanned:
            screened = spamheader.field(spam.score, spam.required) + screened
    return auth, screened, spam


def forget_cached() -> None:
    """Drop the cached database answers (tests that rebuild the database use this)."""
    _lookups.clear()
    forget_known()


def _checked_inline(facts: SmtpFacts, raw: bytes, config: TrustConfig,
                    helo_result: SpfResult | None, headers: list):
    """The checks from cached DNS, on the loop; None when they need the pool (see
    ``INLINE_MAX_BYTES``)."""
    if config.rspamd_url or len(raw) > INLINE_MAX_BYTES:
        return None
    auth = verify_inbound(facts, raw, config, helo_result, cache_only=True, headers=headers)
    if auth.cache_missed:
        return None
    return auth, auth.header + strip_ours(raw, facts.hostname), None


async def _checked(facts: SmtpFacts, raw: bytes, config: TrustConfig,
                   helo_result: SpfResult | None, headers: list):
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor, _check, facts, raw, config, helo_result,
                                      headers)


def _lookup_cached(key: tuple) -> Lookup | None:
    hit = _lookups.get(key)
    return hit[1] if hit is not None and hit[0] > time.monotonic() else None


async def _lookup(key: tuple) -> Lookup:
    now = time.monotonic()
    found = await call_service(lookup, *key)
    if len(_lookups) >= MAX_LOOKUPS:
        _lookups.clear()
    _lookups[key] = (now + LOOKUP_TTL, found)
    return found


def _author(headers: list) -> tuple[str, str] | None:
    """(display name, address) of the first mailbox of the first From field: who the reader
    is shown as the sender."""
    for name, value in headers:
        if name.lower() == "from":
            pairs = parse_address_list(value)
            return (pairs[0][0][:200], pairs[0][1].lower()[:320]) if pairs else None
    return None


async def _no_wait(value):
    return value


async def screen_inbound(server, session, envelope, raw: bytes) -> Screened:
    config = TrustConfig.from_settings()
    if not config.enabled:
        # No scan: no score header either, and a sender's copy of ours goes.
        return Screened(None, spamheader.strip(raw))
    facts = SmtpFacts(
        peer_ip=server.peer_ip or "0.0.0.0",
        helo=session.host_name or "",
        mail_from=envelope.mail_from or "",
        recipients=tuple(envelope.rcpt_tos),
        hostname=server.hostname,
        authenticated_user=getattr(session, "login_data", None) if session.authenticated
        else None,
    )
    # The HELO identity is the session's: checked once for all its messages (RFC 7208 §2.3).
    helo_key = (facts.peer_ip, facts.helo)
    cached = getattr(session, "trust_helo", None)
    helo_result = cached[1] if cached and cached[0] == helo_key else None
    budget = config.dns_timeout + (config.rspamd_timeout if config.rspamd_url else 0) + MARGIN
    # What the database knows (our domains, the recipients' sender lists) is asked while DNS
    # works, for every domain the decision might need (a header parse, cheap on the loop).
    headers, _ = split_header_block(raw)
    _, domains, authors = author_domains(raw, headers)
    mailbox_ids = tuple(getattr(envelope, "mailbox_ids", ()))
    senders = tuple(dict.fromkeys(a for a in (facts.mail_from.lower(), *authors) if a))
    candidates = tuple(dict.fromkeys(
        d for d in (facts.mail_from.rpartition("@")[2].lower(), *domains) if d))
    # Both from caches when they can be: then the message is screened without yielding the
    # loop (every await there queues it behind all the other sessions' work).
    checked = _checked_inline(facts, raw, config, helo_result, headers)
    key = (candidates, mailbox_ids, senders, _author(headers))
    known = _lookup_cached(key)
    try:
        if checked is None or known is None:
            checked, known = await asyncio.wait_for(asyncio.gather(
                _no_wait(checked) if checked else _checked(facts, raw, config, helo_result,
                                                           headers),
                _no_wait(known) if known else _lookup(key)),
                budget)
    except TimeoutError:
        logger.warning("%s: sender authentication timed out", facts.peer_ip)
        return Screened(DNS_TEMPFAIL, raw)
    (auth, screened, spam) = checked
    ours, rules = known.ours, known.rules
    if auth.spf_helo.result != "temperror":
        session.trust_helo = (helo_key, auth.spf_helo)
    verdict = decide(facts, auth, config, spam, ours)
    junk_ids = None if verdict.reply else junk_mailboxes(verdict, auth, mailbox_ids, rules)
    if junk_ids is None and not verdict.reply:
        if getattr(envelope, "remote", None):  # forwarded on too: the local copies into Junk
            junk_ids = frozenset(mailbox_ids)
        else:
            verdict = Verdict("reject", BLOCKED, verdict.reasons + ("sender blocked",))
    if verdict.reply:
        logger.info("%s: refused from <%s>: %s", facts.peer_ip, facts.mail_from,
                    "; ".join(verdict.reasons))
        return Screened(verdict.reply, raw, verdict=verdict)
    junk_ids = junk_ids or frozenset()
    if any(rules.get(m) == "block" for m in junk_ids):
        verdict = Verdict(verdict.action, None, verdict.reasons + ("you blocked this sender",))
    junk = bool(junk_ids)
    record = None
    lookalikes = tuple(LookalikeRecord(m, found) for m, found in known.lookalikes.items()
                       if m in mailbox_ids)
    if junk or spam is not None or verdict.reasons or lookalikes:
        record = VerdictRecord(
            dmarc=auth.dmarc.result, junk=junk,
            spam_scanned=bool(spam and spam.scanned),
            spam_action=spam.action if spam else "",
            spam_score=spam.score if spam and spam.scanned else None,
            spam_required=spam.required if spam and spam.scanned else None,
            spam_symbols=spam.symbols if spam else (),
            reasons=verdict.reasons,
            lookalikes=lookalikes,
        )
    return Screened(None, screened, junk_ids=junk_ids, verdict=verdict, record=record)


def _scan_submission(raw: bytes, config: TrustConfig, facts: SmtpFacts) -> rspamd.SpamResult:
    return rspamd.check_message(
        config.rspamd_url, raw, ip=facts.peer_ip, helo=facts.helo, mail_from=facts.mail_from,
        recipients=facts.recipients, user=facts.authenticated_user, hostname=facts.hostname,
        timeout=config.rspamd_timeout)


async def screen_submission(server, session, envelope, raw: bytes, *, user: str) -> Screened:
    """The submission door's screen: the spam scan only, with the authenticated ``user`` passed
    to rspamd (its ``User`` field), so a compromised account sending spam is stopped here.
    SPF and DMARC say whether a client may send for a domain; an authenticated client's right
    to its addresses was checked at MAIL and by the From/Sender rules, so they do not apply.
    rspamd down or slow: accepted unscanned (the user's mail is never lost to it)."""
    config = TrustConfig.from_settings()
    if not config.enabled or not config.rspamd_url:
        return Screened(None, raw)
    facts = SmtpFacts(
        peer_ip=server.peer_ip or "0.0.0.0", helo=session.host_name or "",
        mail_from=envelope.mail_from or "", recipients=tuple(envelope.rcpt_tos),
        hostname=server.hostname, authenticated_user=user)
    loop = asyncio.get_running_loop()
    try:
        spam = await asyncio.wait_for(
            loop.run_in_executor(_executor, _scan_submission, raw, config, facts),
            config.rspamd_timeout + MARGIN)
    except TimeoutError:
        spam = rspamd.UNSCANNED
    # Greylisting and Junk are for strangers: only refusals apply to our own users.
    if spam.scanned and spam.action in ("reject", "soft reject"):
        logger.warning("%s: submission by %s refused by the spam filter (%s, score %g)",
                       facts.peer_ip, user, spam.action, spam.score)
        return Screened(SPAM_REPLIES[spam.action], raw)
    return Screened(None, raw)


async def record_screened(message: bytes, screened: Screened | None) -> None:
    """After an INBOX delivery: keep the verdict with the stored message. The message is
    already committed (and acknowledged next): a failure here is logged, never fatal."""
    if screened is None or screened.record is None:
        return
    try:
        await call_service(record_verdict, message, screened.record)
    except Exception:
        logger.exception("verdict of a delivered message not recorded")
