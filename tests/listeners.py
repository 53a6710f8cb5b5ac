"""Run an asyncio listener in-process for tests: its own event loop in a thread, bound to
127.0.0.1 port 0, so real clients (smtplib, imaplib, poplib, swaks, curl...) can talk to it."""

import asyncio
import threading
from collections.abc import Awaitable, Callable
from contextlib import contextmanager


class RunningListener:
    def __init__(self, loop: asyncio.AbstractEventLoop, servers: list):
        self.loop = loop
        self.servers = servers

    @property
    def ports(self) -> list[int]:
        return [server.sockets[0].getsockname()[1] for server in self.servers]

    @property
    def port(self) -> int:
        return self.ports[0]

    def call(self, coro) -> object:
        """Run a coroutine on the listener's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)


@contextmanager
def serve_in_thread(start: Callable[[], Awaitable[list]], name: str = "listener"):
    """``start()`` runs on a new event loop in a thread and returns the asyncio servers it bound.
    Touches no database connection (remote-MX stand-ins use it in plain ``django_db`` tests)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    result: dict = {}

    def main():
        asyncio.set_event_loop(loop)

        async def boot():
            try:
                result["servers"] = await start()
            except BaseException as exc:
                result["error"] = exc
            ready.set()

        loop.run_until_complete(boot())
        if "error" not in result:
            loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    thread = threading.Thread(target=main, name=name, daemon=True)
    thread.start()
    ready.wait(30)
    if "error" in result:
        raise result["error"]
    listener = RunningListener(loop, result["servers"])
    try:
        yield listener
    finally:

        async def stop():
            for server in listener.servers:
                server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)


@contextmanager
def run_listener(start: Callable[[], Awaitable[list]]):
    """A Correio listener: as :func:`serve_in_thread`, then every database connection its
    service threads opened is closed, so transactional tests can flush or drop the database."""
    try:
        with serve_in_thread(start) as listener:
            yield listener
    finally:
        from django.db import connections

        from mailcore.protocols.common.services import close_connections

        close_connections()
        connections.close_all()
