"""The one call the SMTP DATA handler makes into inbound trust: ``screen_inbound``.

Verification is blocking DNS work, so it runs in a thread pool of its own (a slow resolver
must not starve the database pool that stores mail), bounded by the DNS budget plus a margin:
the client waits at most that long before it hears 451 4.4.3. The decision (which needs the
database) then runs through the service adapter."""

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from mailcore.protocols.common.services import call_service
from mailcore.trust.authresults import strip_ours
from mailcore.trust.config import TrustConfig
from mailcore.trust.policy import DNS_TEMPFAIL, JUNK, Verdict, decide
from mailcore.trust.verify import SmtpFacts, verify_inbound

logger = logging.getLogger("correio.trust")
_executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="correio-trust")
# Beyond the DNS budget: CPU time of RSA checks and parsing on a busy machine.
MARGIN = 2.0


@dataclass(frozen=True)
class Screened:
    """``reply``: refuse with it (None = accept); ``raw``: the message to store, with our
    Authentication-Results first and forged ones gone; ``junk``: deliver into Junk."""

    reply: str | None
    raw: bytes
    junk: bool = False
    verdict: Verdict | None = None


async def screen_inbound(server, session, envelope, raw: bytes) -> Screened:
    config = TrustConfig.from_settings()
    if not config.enabled:
        return Screened(None, raw)
    facts = SmtpFacts(
        peer_ip=server.peer_ip or "0.0.0.0",
        helo=session.host_name or "",
        mail_from=envelope.mail_from or "",
        recipients=tuple(envelope.rcpt_tos),
        hostname=server.hostname,
        authenticated_user=getattr(session, "login_data", None) if session.authenticated
        else None,
    )
    loop = asyncio.get_running_loop()
    try:
        auth = await asyncio.wait_for(
            loop.run_in_executor(_executor, verify_inbound, facts, raw, config),
            config.dns_timeout + MARGIN,
        )
    except TimeoutError:
        logger.warning("%s: sender authentication timed out", facts.peer_ip)
        return Screened(DNS_TEMPFAIL, raw)
    verdict = await call_service(decide, facts, auth, config)
    if verdict.reply:
        logger.info("%s: refused from <%s>: %s", facts.peer_ip, facts.mail_from,
                    "; ".join(verdict.reasons))
        return Screened(verdict.reply, raw, verdict=verdict)
    return Screened(None, auth.header + strip_ours(raw, facts.hostname),
                    junk=verdict.action == JUNK, verdict=verdict)
