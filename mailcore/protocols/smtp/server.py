"""Start the SMTP listeners a ``ListenerConfig`` asks for: the MX listener on ``smtp_addr``.

Servers are built with the loop's ``create_server`` (aiosmtpd's Controller cannot bind port 0,
which the tests need). All listeners of a process share one group committer."""

import asyncio

from mailcore.protocols.common.config import Addr, ListenerConfig
from mailcore.protocols.common.limits import ConnectionLimiter
from mailcore.protocols.smtp.commit import GroupCommitter
from mailcore.protocols.smtp.handler import MXHandler
from mailcore.protocols.smtp.policy import MX_POLICY, ListenerPolicy, SMTPLimits
from mailcore.protocols.smtp.protocol import CorreioSMTP


def limits_for(config: ListenerConfig) -> SMTPLimits:
    return config.extra.get("smtp_limits") or SMTPLimits()


def committer_for(config: ListenerConfig) -> GroupCommitter:
    limits = limits_for(config)
    return config.extra.get("smtp_committer") or GroupCommitter(
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

    def factory() -> CorreioSMTP:
        return protocol_class(
            handler,
            config=config,
            policy=policy,
            limits=limits,
            limiter=limiter,
            loop=loop,
            **protocol_kwargs,
        )

    host, port = addr
    ssl_context = config.server_tls_context if policy.implicit_tls else None
    return await loop.create_server(factory, host, port, ssl=ssl_context, reuse_address=True)


async def start_servers(config: ListenerConfig) -> list[asyncio.Server]:
    servers = []
    if config.smtp_addr is not None:
        handler = MXHandler(committer_for(config))
        servers.append(await create_smtp_server(config, config.smtp_addr, handler, MX_POLICY))
    # Submission (587 STARTTLS, 465 implicit TLS) for authenticated users: the outbound issue.
    from mailcore.protocols.smtp.submission import start_submission_servers

    servers.extend(await start_submission_servers(config))
    return servers
