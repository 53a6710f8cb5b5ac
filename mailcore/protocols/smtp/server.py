"""Start the SMTP listeners a ``ListenerConfig`` asks for: the MX listener on ``smtp_addr``, and
the submission listeners on ``submission_addr`` (587, STARTTLS) and ``submissions_addr`` (465,
implicit TLS, when a certificate is configured).

Servers are built with the loop's ``create_server`` (aiosmtpd's Controller cannot bind port 0,
which the tests need). The MX listeners of a process share one group committer, the submission
listeners another (:mod:`mailcore.protocols.smtp.commit`)."""

import asyncio
import logging

from mailcore.protocols.common import implicit_tls
from mailcore.protocols.common.config import Addr, ListenerConfig
from mailcore.protocols.common.limits import ConnectionLimiter, PerKeyLimiter, is_loopback
from mailcore.protocols.smtp.commit import (
    BatchCommitter,
    intake_committer,
    submission_committer,
)
from mailcore.protocols.smtp.handler import MXHandler
from mailcore.protocols.smtp.policy import MX_POLICY, ListenerPolicy, SMTPLimits
from mailcore.protocols.smtp.protocol import CorreioSMTP
from mailcore.protocols.smtp.submission import (
    SUBMISSION_POLICY,
    SUBMISSIONS_POLICY,
    SubmissionHandler,
    SubmissionSMTP,
)

logger = logging.getLogger("correio.smtp")


def limits_for(config: ListenerConfig) -> SMTPLimits:
    return config.extra.get("smtp_limits") or SMTPLimits()


def committer_for(config: ListenerConfig) -> BatchCommitter:
    """The MX's group committer (tests may pass their own as ``extra["smtp_committer"]``)."""
    limits = limits_for(config)
    return config.extra.get("smtp_committer") or intake_committer(
        window=limits.commit_window, max_batch=limits.commit_batch
    )


async def create_smtp_server(
    config: ListenerConfig,
    addr: Addr,
    handler,
    policy: ListenerPolicy,
    *,
    protocol_class: type[CorreioSMTP] = CorreioSMTP,
    **protocol_kwargs,
) -> asyncio.Server:
    """Bind one SMTP listener; each has its own connection limits."""
    loop = asyncio.get_running_loop()
    limits = limits_for(config)
    limiter = ConnectionLimiter(config.max_connections, config.max_connections_per_ip,
                                "smtp" if policy.name == "mx" else policy.name)
    data_limiter = PerKeyLimiter(limits.max_data_per_ip)

    def factory(counted_ip: str | None = None) -> CorreioSMTP:
        return protocol_class(
            handler,
            config=config,
            policy=policy,
            limits=limits,
            limiter=limiter,
            data_limiter=data_limiter,
            counted_ip=counted_ip,
            loop=loop,
            **protocol_kwargs,
        )

    host, port = addr
    if not policy.implicit_tls:
        return await loop.create_server(factory, host, port, reuse_address=True)
    # 465: plain TCP first, so the connection is counted and given a handshake slot before
    # any TLS work; the gate hands the TLS transport to the SMTP protocol (implicit_tls.py).
    handshakes = implicit_tls.handshake_limiter(config, policy.name)
    quiet_log = implicit_tls.QuietLog(logger, "SMTP (465)")

    def gate() -> implicit_tls.ImplicitTLSGate:
        return implicit_tls.ImplicitTLSGate(
            make_protocol=factory, limiter=limiter, handshakes=handshakes,
            context=config.server_tls_context,
            timeout=min(config.tls_handshake_timeout, config.preauth_timeout),
            quiet_log=quiet_log,
        )

    return await loop.create_server(gate, host, port, reuse_address=True)


async def start_submission_servers(config: ListenerConfig) -> list[asyncio.Server]:
    """Bind 587 (STARTTLS) and, when a certificate is configured, 465 (implicit TLS)."""
    allow_plaintext = config.extra.get("submission_allow_plaintext", is_loopback)
    limits = limits_for(config)
    handler = SubmissionHandler(config.extra.get("submission_committer") or submission_committer(
        window=limits.commit_window, max_batch=limits.commit_batch))
    servers = []
    if config.submission_addr is not None:
        servers.append(await create_smtp_server(
            config, config.submission_addr, handler, SUBMISSION_POLICY,
            protocol_class=SubmissionSMTP, allow_plaintext=allow_plaintext))
    if config.submissions_addr is not None:
        if config.has_tls:
            servers.append(await create_smtp_server(
                config, config.submissions_addr, handler, SUBMISSIONS_POLICY,
                protocol_class=SubmissionSMTP, allow_plaintext=allow_plaintext))
        else:
            logger.warning("no TLS certificate: the implicit-TLS submission port stays closed")
    return servers


async def start_servers(config: ListenerConfig) -> list[asyncio.Server]:
    servers = []
    if config.smtp_addr is not None:
        handler = MXHandler(committer_for(config))
        servers.append(await create_smtp_server(config, config.smtp_addr, handler, MX_POLICY))
    servers.extend(await start_submission_servers(config))
    return servers
