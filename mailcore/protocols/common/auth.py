"""The listeners' side of the one credential check (mailcore/services/credentials.py): reserve
an attempt with the throttle, wait its delay on the event loop (``asyncio.sleep``: a slowed
guesser never holds a thread or blocks other sessions), then check the password in the service
thread pool. Credentials that are not UTF-8 (the doors decode them with ``surrogateescape``)
are a failed login like any other, never an error."""

import asyncio

from mailcore.protocols.common.services import call_service
from mailcore.services import credentials


async def authenticate(login: str, password: str, peer_ip: str | None) -> credentials.Verified:
    """The mailbox for these credentials and the app password used (if one was), or
    ``AuthFailed`` / ``AuthThrottled``."""
    if credentials.is_undecodable(login) or credentials.is_undecodable(password):
        await call_service(credentials.refuse_login, login, peer_ip)
    step = await call_service(credentials.begin_login, login, password, peer_ip)
    if step.wait:
        await asyncio.sleep(step.wait)
    return await call_service(credentials.finish_login_verified, step, login, password)
