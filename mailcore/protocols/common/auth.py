"""The listeners' side of the one credential check (mailcore/services/credentials.py): reserve
an attempt with the throttle, wait its delay on the event loop (``asyncio.sleep``: a slowed
guesser never holds a thread or blocks other sessions), then check the password in the service
thread pool."""

import asyncio

from mailcore.models import Mailbox
from mailcore.protocols.common.services import call_service
from mailcore.services import credentials


async def authenticate(login: str, password: str, peer_ip: str | None) -> Mailbox:
    """The mailbox for these credentials, or ``AuthFailed`` / ``AuthThrottled``."""
    step = await call_service(credentials.begin_login, login, password, peer_ip)
    if step.wait:
        await asyncio.sleep(step.wait)
    return await call_service(credentials.finish_login, step, login, password)
