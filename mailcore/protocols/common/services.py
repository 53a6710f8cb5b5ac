"""The one adapter between asyncio listeners and the synchronous service layer.

Every call runs in a worker thread with its own database connection (Django connections are
per-thread), closing connections that went stale, so a listener never touches the ORM on its
event loop."""

import asyncio
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from django.db import close_old_connections

from mailcore import metrics

P = ParamSpec("P")
T = TypeVar("T")

# Bounded: the database serialises writers anyway, and SQLite allows one at a time.
_executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="correio-db")


def _call(func: Callable[P, T], *args, **kwargs) -> T:
    close_old_connections()
    return func(*args, **kwargs)


async def call_service(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``func(*args, **kwargs)`` in the database thread pool and return its result."""
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    try:
        return await loop.run_in_executor(_executor,
                                          functools.partial(_call, func, *args, **kwargs))
    finally:
        metrics.SERVICE_SECONDS.labels(getattr(func, "__name__", "other")).observe(
            time.perf_counter() - start)


def close_connections(timeout: float = 10.0) -> None:
    """Close the database connection of every pool thread (end of a test, or shutdown).

    One task per possible thread, each waiting at a barrier, puts a task on every thread of the
    pool at once, so each closes its own thread-local connection."""
    import threading

    from django.db import connections

    workers = _executor._max_workers
    barrier = threading.Barrier(workers)

    def close():
        try:
            barrier.wait(timeout)
        except threading.BrokenBarrierError:
            pass
        connections.close_all()

    futures = [_executor.submit(close) for _ in range(workers)]
    for future in futures:
        future.result(timeout=timeout + 5)
