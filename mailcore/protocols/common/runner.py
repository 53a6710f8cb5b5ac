"""Run mail listeners in one process until SIGINT/SIGTERM (runmail, runsmtp, runimap, runpop3).

Each protocol package has ``server.start_servers(config) -> list[asyncio.Server]`` that binds the
listeners its addresses ask for (skipping those set to None)."""

import asyncio
import gc
import importlib
import logging
import signal

from mailcore.metrics_http import start_metrics_server
from mailcore.protocols.common import watchdog
from mailcore.protocols.common.config import ListenerConfig

logger = logging.getLogger("correio.listeners")

# asyncio gives every TLS connection a read buffer of SSLProtocol.max_size octets, 256 KiB,
# allocated when the handshake starts: 600 half-open handshakes on the TLS ports grew the mail
# process by 176 MB (bench/hostile.py, issue 12). 32 KiB holds two TLS records; a larger read
# only saves loop iterations on bulk transfers. A private name of the standard library, checked
# by tests/mailcore/test_watchdog.py; set in the mail process only.
TLS_READ_BUFFER = 32 * 1024


def bound_tls_buffers() -> None:
    from asyncio import sslproto

    sslproto.SSLProtocol.max_size = TLS_READ_BUFFER


# glibc gives each thread that allocates its own malloc arena (up to 8 per core) and returns
# little of an arena's freed memory: the service threads handling big messages left the
# process ~30 MB larger than with two arenas (bench/hostile.py, "big DATA"). Python's own
# allocator serves small objects, so fewer arenas cost no measurable contention.
M_ARENA_MAX = -8
MALLOC_ARENAS = 2


def bound_malloc_arenas() -> None:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "mallopt"):
            libc.mallopt(M_ARENA_MAX, MALLOC_ARENAS)
    except OSError:
        pass  # not glibc: nothing to tune


def freeze_startup_heap() -> None:
    """Keep what start-up built (Django, models, every protocol module: ~85,000 objects) out of
    the cyclic garbage collector's passes. A full pass walks every tracked object and holds
    the GIL, so the loop, throughout: 140-320 ms here (a profile of the mail process during
    600 half-open TLS handshakes spent 30% of its CPU in ``gc_collect_main``; the floods of
    connection objects are what trigger the passes). Frozen objects are still freed by
    reference counting; only cycles among them are never collected, and start-up builds
    objects that live as long as the process."""
    gc.collect()
    gc.freeze()


# Protocol packages with a server module; each listener issue adds its own.
PROTOCOLS: tuple[str, ...] = ()
PROTOCOLS += ("pop3",)
PROTOCOLS += ("smtp",)
PROTOCOLS += ("imap",)
PROTOCOLS += ("managesieve",)


async def serve(protocols: list[str], config: ListenerConfig) -> None:
    bound_tls_buffers()
    bound_malloc_arenas()
    servers = []
    for name in protocols:
        module = importlib.import_module(f"mailcore.protocols.{name}.server")
        servers.extend(await module.start_servers(config))
    for server in servers:
        for sock in server.sockets:
            logger.info("listening on %s", sock.getsockname()[:2])
    freeze_startup_heap()
    # Started once the listeners are bound: importing and binding them holds the loop, and
    # that start-up time is no lag to shed connections for.
    watchdog_task = watchdog.start(watchdog.for_config(config))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()
    for server in servers:
        await server.wait_closed()
    watchdog_task.cancel()


def run(protocols: list[str], config: ListenerConfig | None = None) -> None:
    from django.conf import settings

    metrics = start_metrics_server(settings.CORREIO_METRICS_ADDR, settings.CORREIO_METRICS_TOKEN)
    try:
        asyncio.run(serve(protocols, config or ListenerConfig.from_settings()))
    finally:
        if metrics is not None:
            metrics.shutdown()
