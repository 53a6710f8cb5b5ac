"""Open sessions end when their credentials are revoked: a disabled mailbox, user or domain, a
changed password, two-factor turned on, or a revoked app password (``credentials.is_revoked``).

One watcher per event loop (per listener process) keeps the signed-in sessions of that loop and,
every ``CHECK_SECONDS``, reads the state of all their accounts in one query
(``credentials.account_states``) and calls each revoked session's ``end``. Polling the database,
rather than waiting for an event, sees every way an account can change (the admin, a shell, the
webmail in another process, with or without Redis) at a cost that does not grow with the number
of sessions: one query per loop every few seconds."""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from mailcore.protocols.common.services import call_service
from mailcore.services import credentials

logger = logging.getLogger("correio.revocation")

CHECK_SECONDS = 2.0


@dataclass
class _Session:
    mailbox_id: int
    app_password: int | None
    state: credentials.AccountState | None
    end: Callable[[], None]


class Watcher:
    def __init__(self) -> None:
        self.sessions: dict[object, _Session] = {}
        self.task: asyncio.Task | None = None

    async def watch(
        self, login: credentials.Verified, end: Callable[[], None]
    ) -> Callable[[], None]:
        mailbox_id = login.mailbox.pk
        states = await call_service(credentials.account_states, [mailbox_id])
        token = object()
        self.sessions[token] = _Session(
            mailbox_id, login.app_password, states.get(mailbox_id), end
        )
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())
        return lambda: self.sessions.pop(token, None)

    async def _run(self) -> None:
        while self.sessions:
            await asyncio.sleep(CHECK_SECONDS)
            ids = sorted({session.mailbox_id for session in self.sessions.values()})
            if not ids:
                continue
            try:
                states = await call_service(credentials.account_states, ids)
            except Exception:
                logger.warning("could not read account states; retrying", exc_info=True)
                continue
            for token in revoked(self.sessions, set(ids), states):
                session = self.sessions.pop(token, None)
                if session is None:
                    continue
                try:
                    session.end()
                except Exception:
                    logger.exception("ending a revoked session failed")


def revoked(sessions: dict, queried: set[int], states: dict) -> list:
    """The sessions to end, given the account states read for the ``queried`` mailboxes. A
    session that signed in while the states were being read is not among them and waits for the
    next round: its absence from ``states`` must not read as a deleted account."""
    return [
        token for token, session in sessions.items()
        if session.mailbox_id in queried
        and credentials.is_revoked(session.state, states.get(session.mailbox_id),
                                   session.app_password)
    ]


_watchers: "WeakKeyDictionary[asyncio.AbstractEventLoop, Watcher]" = WeakKeyDictionary()


async def watch_session(
    login: credentials.Verified, end: Callable[[], None]
) -> Callable[[], None]:
    """Call ``end()`` (on this loop) once the credentials this session signed in with are
    revoked; returns the function that stops watching (call it when the session ends)."""
    loop = asyncio.get_running_loop()
    watcher = _watchers.get(loop)
    if watcher is None:
        watcher = _watchers[loop] = Watcher()
    return await watcher.watch(login, end)
