"""The one adapter between asyncio listeners and the synchronous service layer.

Every call runs in a worker thread with its own database connection (Django connections are
per-thread), closing connections that went stale, so a listener never touches the ORM on its
event loop."""

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from django.db import close_old_connections

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
    return await loop.run_in_executor(_executor, functools.partial(_call, func, *args, **kwargs))
