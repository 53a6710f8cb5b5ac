"""The loop-lag watchdog (issue 12): a stalled event loop is logged, and while it lags every door
refuses new connections with its temporary error instead of queueing them."""

import asyncio
import logging
import socket
import time

import pytest

from mailcore.protocols.common import watchdog
from mailcore.protocols.common.config import ListenerConfig
from mailcore.protocols.pop3.server import start_servers as start_pop3
from mailcore.protocols.smtp.server import start_servers as start_smtp
from tests.listeners import run_listener

pytestmark = pytest.mark.django_db(transaction=True)


def first_line(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        return sock.makefile("rb").readline()


@pytest.fixture
def doors():
    config = ListenerConfig(hostname="mail.example.test", smtp_addr=("127.0.0.1", 0),
                            pop3_addr=("127.0.0.1", 0))
    dog = watchdog.LoopWatchdog(threshold=0.1, hold=5.0)

    async def start():
        watchdog.start(dog)
        return [*await start_smtp(config), *await start_pop3(config)]

    with run_listener(start) as listener:
        listener.watchdog = dog
        yield listener


def stall(listener, seconds: float) -> None:
    async def block():
        time.sleep(seconds)  # what no listener may do: hold the loop

    listener.loop.call_soon_threadsafe(lambda: asyncio.ensure_future(block()))


def test_a_calm_loop_sheds_nothing(doors):
    smtp_port, pop3_port = doors.ports
    for _ in range(5):
        assert first_line(smtp_port).startswith(b"220 ")
        assert first_line(pop3_port).startswith(b"+OK")
        time.sleep(0.05)
    assert doors.watchdog.shed_connections == 0
    assert doors.watchdog.max_lag < 0.1


def test_a_stalled_loop_is_logged_and_new_connections_refused_until_it_recovers(doors, caplog):
    smtp_port, pop3_port = doors.ports
    with caplog.at_level(logging.WARNING, logger="correio.listeners"):
        stall(doors, 1.0)
        time.sleep(1.15)  # refused for as long as the loop was late
        assert first_line(smtp_port).startswith(b"421 4.7.0")
        assert first_line(pop3_port).startswith(b"-ERR [SYS/TEMP]")
    [warning] = [r for r in caplog.records if "event loop lagged" in r.getMessage()]
    assert 900 <= doors.watchdog.max_lag * 1000 < 2000
    assert doors.watchdog.shed_connections == 2
    time.sleep(1.0)  # the shedding ends with a calm loop
    assert first_line(smtp_port).startswith(b"220 ")
    assert first_line(pop3_port).startswith(b"+OK")


def test_the_tls_read_buffer_asyncio_allocates_per_connection_is_still_max_size():
    import inspect
    from asyncio import sslproto

    from mailcore.protocols.common import runner

    # runner.bound_tls_buffers shrinks a private class attribute of asyncio: fail loudly if a
    # Python release renames it or stops sizing the per-connection buffer by it.
    assert "bytearray(self.max_size)" in inspect.getsource(sslproto.SSLProtocol.__init__)
    original = sslproto.SSLProtocol.max_size
    try:
        runner.bound_tls_buffers()
        assert sslproto.SSLProtocol.max_size == runner.TLS_READ_BUFFER
    finally:
        sslproto.SSLProtocol.max_size = original
