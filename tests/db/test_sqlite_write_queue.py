"""The SQLite backend's write queue (``mailcore.db.sqlite3``): write transactions and write
statements take a lock shared by the threads of a process and, through ``flock``, by other
processes; reads take none. Runs on a SQLite file of its own whatever the suite's database."""

import subprocess
import sys
import threading
import time

import pytest
from django.db import connections, transaction

from mailcore.db.sqlite3.base import _write_lock

ALIAS = "write_queue_test"


@pytest.fixture
def db_path(tmp_path, django_db_blocker):
    path = tmp_path / "queue.sqlite3"
    configured = connections.configure_settings({"default": dict(connections.settings["default"]),
                                                  ALIAS: {
        "ENGINE": "mailcore.db.sqlite3",
        "NAME": str(path),
        "OPTIONS": {"timeout": 10, "transaction_mode": "IMMEDIATE",
                    "init_command": "PRAGMA journal_mode=WAL;"},
    }})
    connections.settings[ALIAS] = configured[ALIAS]
    with django_db_blocker.unblock():
        with connections[ALIAS].cursor() as cursor:
            cursor.execute("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER)")
            cursor.execute("INSERT INTO counter (id, n) VALUES (1, 0)")
        yield path
        connections[ALIAS].close()
    del connections[ALIAS]
    del connections.settings[ALIAS]


def in_thread(func):
    """Run ``func`` in a thread with its own connection; returns the thread (started)."""
    def run():
        try:
            func()
        finally:
            connections[ALIAS].close()
            del connections[ALIAS]

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def read_count() -> int:
    with connections[ALIAS].cursor() as cursor:
        cursor.execute("SELECT n FROM counter WHERE id = 1")
        return cursor.fetchone()[0]


def test_concurrent_read_modify_write_transactions_all_commit_in_turn(db_path):
    errors = []

    def worker():
        try:
            for _ in range(25):
                with transaction.atomic(using=ALIAS):
                    n = read_count()
                    with connections[ALIAS].cursor() as cursor:
                        cursor.execute("UPDATE counter SET n = %s WHERE id = 1", [n + 1])
        except Exception as error:  # reported below, not swallowed
            errors.append(error)

    threads = [in_thread(worker) for _ in range(8)]
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert read_count() == 200


def test_the_lock_is_held_for_the_transaction_and_released_on_commit_or_rollback(db_path):
    lock = _write_lock(str(db_path))
    with transaction.atomic(using=ALIAS):
        assert lock.thread_lock.locked()
    assert not lock.thread_lock.locked()
    with pytest.raises(RuntimeError):
        with transaction.atomic(using=ALIAS):
            assert lock.thread_lock.locked()
            raise RuntimeError("rolled back")
    assert not lock.thread_lock.locked()
    with connections[ALIAS].cursor() as cursor:  # an autocommit write takes it only meanwhile
        cursor.execute("UPDATE counter SET n = n + 1 WHERE id = 1")
    assert not lock.thread_lock.locked()


def test_readers_pass_while_a_writer_holds_the_lock_and_writers_wait(db_path):
    held = threading.Event()
    release = threading.Event()
    done = {}

    def writer():
        with transaction.atomic(using=ALIAS):
            with connections[ALIAS].cursor() as cursor:
                cursor.execute("UPDATE counter SET n = 10 WHERE id = 1")
            held.set()
            release.wait(10)

    def reader():
        done["read"] = (time.monotonic(), read_count())

    def second_writer():
        with connections[ALIAS].cursor() as cursor:
            cursor.execute("UPDATE counter SET n = n + 1 WHERE id = 1")
        done["write"] = time.monotonic()

    first = in_thread(writer)
    assert held.wait(10)
    readers = in_thread(reader)
    readers.join(5)
    assert done["read"][1] == 0  # the uncommitted write is not seen, and nobody waited
    waiting = in_thread(second_writer)
    time.sleep(0.3)
    assert "write" not in done
    released_at = time.monotonic()
    release.set()
    first.join(10)
    waiting.join(10)
    assert done["write"] >= released_at
    assert read_count() == 11


def test_a_write_waits_for_another_process_holding_the_file_lock(db_path):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time\n"
         f"fd = os.open({str(db_path) + '.writelock'!r}, os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\n"
         "print('locked', flush=True)\n"
         "time.sleep(0.6)\n"],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout.readline().strip() == b"locked"
        started = time.monotonic()
        with transaction.atomic(using=ALIAS):
            waited = time.monotonic() - started
            with connections[ALIAS].cursor() as cursor:
                cursor.execute("UPDATE counter SET n = 5 WHERE id = 1")
    finally:
        holder.wait(10)
    assert waited >= 0.3
    assert read_count() == 5
