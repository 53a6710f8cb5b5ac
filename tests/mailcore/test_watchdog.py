"""The loop-lag watchdog (issue 12): lag is logged; a stalled event loop (one lag of seconds,
or a loop late by half that on every tick for seconds) makes every door refuse new connections
with its temporary error; the lags of normal concurrent load refuse nothing."""

import asyncio
import logging
import smtplib
import socket
import threading
import time

import pytest

from mailcore.models import Message
from mailcore.protocols.common import watchdog
from mailcore.protocols.common.config import ListenerConfig
from mailcore.protocols.imap.server import start_servers as start_imap
from mailcore.protocols.pop3.server import start_servers as start_pop3
from mailcore.protocols.smtp.server import start_servers as start_smtp
from tests.listeners import run_listener

pytestmark = pytest.mark.django_db(transaction=True)


def first_line(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        return sock.makefile("rb").readline()


def start_doors(dog: watchdog.LoopWatchdog, config: ListenerConfig | None = None):
    config = config or ListenerConfig(
        hostname="mail.example.test", smtp_addr=("127.0.0.1", 0), pop3_addr=("127.0.0.1", 0),
        imap_addr=("127.0.0.1", 0),
    )

    async def start():
        watchdog.start(dog)
        return [*await start_smtp(config), *await start_pop3(config), *await start_imap(config)]

    listener = run_listener(start)
    return listener


def hold_loop(listener, seconds: float) -> None:
    """What no listener may do: hold the loop (from the loop's own thread)."""
    async def block():
        time.sleep(seconds)

    listener.loop.call_soon_threadsafe(lambda: asyncio.ensure_future(block()))


# --- the rule, tick by tick (the loop's clock passed in) ---------------------------------------

def test_lags_of_a_busy_loop_shed_nothing():
    dog = watchdog.LoopWatchdog(threshold=0.1, stall=2.0, sustain=5.0, hold=5.0)
    now = 0.0
    for lag in [0.15, 0.3, 0.8, 0.12, 0.9, 0.4] * 20:  # GIL contention: routine under load
        now += 0.05 + lag
        dog.observe(lag, now)
        assert not dog.stalled_at(now)
    assert dog.lagging_ticks == 120 and dog.stalls == 0


def test_one_lag_of_a_stall_sheds_for_as_long_as_the_loop_was_late():
    dog = watchdog.LoopWatchdog(threshold=0.1, stall=2.0, hold=5.0)
    dog.observe(0.01, 10.0)
    dog.observe(3.0, 13.05)
    assert dog.stalled_at(13.1) and dog.stalled_at(16.0)
    assert not dog.stalled_at(16.1)
    dog.observe(30.0, 50.0)  # at most ``hold``
    assert dog.stalled_at(54.9) and not dog.stalled_at(55.1)
    assert dog.stalls == 2


def test_a_loop_late_by_half_a_stall_on_every_tick_for_seconds_is_stalled():
    dog = watchdog.LoopWatchdog(threshold=0.1, stall=2.0, sustain=5.0, hold=5.0)
    now = 0.0
    for _ in range(3):  # 3.3 s of 1.05 s late ticks: not yet
        now += 1.1
        dog.observe(1.05, now)
        assert not dog.stalled_at(now)
    now += 0.2
    dog.observe(0.15, now)  # one tick under half a stall ends the run
    for tick in range(5):
        now += 1.1
        dog.observe(1.05, now)
        assert dog.stalled_at(now) == (tick == 4)  # the run has lasted 5 s
    now += 0.06
    dog.observe(0.01, now)  # calm again: the period ends after the last lag's length
    assert dog.stalled_at(now) and not dog.stalled_at(now + 1.1)


# --- real listeners ------------------------------------------------------------------------

def test_a_calm_loop_sheds_nothing():
    dog = watchdog.LoopWatchdog()
    with start_doors(dog) as doors:
        smtp_port, pop3_port, imap_port = doors.ports[:3]
        for _ in range(5):
            assert first_line(smtp_port).startswith(b"220 ")
            assert first_line(pop3_port).startswith(b"+OK")
            assert first_line(imap_port).startswith(b"* OK")
            time.sleep(0.05)
    assert dog.shed_connections == 0


def test_a_stalled_loop_is_logged_and_new_connections_refused_until_it_recovers(caplog):
    dog = watchdog.LoopWatchdog(threshold=0.1, stall=0.6, hold=5.0)
    with start_doors(dog) as doors, caplog.at_level(logging.WARNING, logger="correio.listeners"):
        smtp_port, pop3_port, imap_port = doors.ports[:3]
        hold_loop(doors, 1.0)
        time.sleep(1.15)  # refused for as long as the loop was late
        # A temporary lack of resources (RFC 3463 X.3.2), not "too many connections".
        assert first_line(smtp_port).startswith(b"421 4.3.2 mail.example.test Service busy")
        assert first_line(pop3_port) == b"-ERR [SYS/TEMP] server busy; try again later\r\n"
        assert first_line(imap_port).startswith(b"* BYE [UNAVAILABLE]")
        assert [r for r in caplog.records if "event loop stalled" in r.getMessage()]
        assert dog.stalls == 1 and dog.shed_connections == 3
        time.sleep(1.0)  # the shedding ends with a calm loop
        assert first_line(smtp_port).startswith(b"220 ")
        assert first_line(pop3_port).startswith(b"+OK")
        assert first_line(imap_port).startswith(b"* OK")


def test_lags_below_a_stall_are_logged_but_refuse_nothing(caplog):
    dog = watchdog.LoopWatchdog()  # the mail process's defaults
    with start_doors(dog) as doors, caplog.at_level(logging.WARNING, logger="correio.listeners"):
        smtp_port, pop3_port, imap_port = doors.ports[:3]
        for _ in range(6):
            hold_loop(doors, 0.3)  # 300 ms lags, over and over
            assert first_line(smtp_port).startswith(b"220 ")
            assert first_line(pop3_port).startswith(b"+OK")
            assert first_line(imap_port).startswith(b"* OK")
        assert dog.lagging_ticks >= 1
    assert dog.shed_connections == 0
    assert [r for r in caplog.records if "event loop lagged" in r.getMessage()]


def test_twenty_concurrent_smtp_sessions_are_all_served_beside_cpu_bound_threads(make_mailbox):
    """Postfix's ``smtp-source -s 10`` was answered 421 at its banner when any 100 ms lag shed
    connections: service threads holding the GIL make such lags routine under load."""
    make_mailbox("demo@example.test")
    config = ListenerConfig(hostname="mail.example.test", smtp_addr=("127.0.0.1", 0))
    dog = watchdog.for_config(config)
    stop = threading.Event()

    def burn():  # pure-Python work: the GIL changes hands every 5 ms (sys.getswitchinterval)
        while not stop.is_set():
            sum(i * i for i in range(100_000))

    failures: list[str] = []

    def session(port: int, n: int) -> None:
        # Two sending hosts: one address may have 10 messages in DATA at once.
        source = ("127.0.0.1" if n % 2 else "127.0.0.2", 0)
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=60, source_address=source) as client:
                for i in range(5):
                    body = (f"From: a@remote.test\r\nSubject: {n}.{i}\r\n\r\n"
                            + ("x" * 76 + "\r\n") * 64)
                    assert client.sendmail("a@remote.test", ["demo@example.test"],
                                           body.encode()) == {}
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            failures.append(f"session {n}: {error!r}")

    async def start():
        watchdog.start(dog)
        return await start_smtp(config)

    burners = [threading.Thread(target=burn) for _ in range(2)]
    for thread in burners:
        thread.start()
    try:
        with run_listener(start) as listener:
            sessions = [threading.Thread(target=session, args=(listener.port, n))
                        for n in range(20)]
            for thread in sessions:
                thread.start()
            for thread in sessions:
                thread.join(120)
    finally:
        stop.set()
        for thread in burners:
            thread.join()
    print(f"loop lag: max {dog.max_lag * 1000:.0f} ms, {dog.lagging_ticks} ticks over "
          f"{dog.threshold * 1000:.0f} ms")
    assert failures == []
    assert dog.shed_connections == 0
    assert Message.objects.filter(folder__mailbox__address="demo@example.test").count() == 100


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
