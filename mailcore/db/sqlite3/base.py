"""Django's SQLite backend with writers queued on a lock instead of SQLite's busy handler.

SQLite allows one writer at a time. A connection that finds the write lock taken waits in its
busy handler, which sleeps 1, 2, 5, 10, ... up to 100 ms between retries: under concurrent
writes (IMAP STORE/APPEND/EXPUNGE from ten sessions, SMTP intake, the webmail) a 1 ms commit
then costs 20-120 ms. Here every write transaction (``BEGIN IMMEDIATE`` of ``atomic``) and every
write statement outside one first takes a lock shared by the threads of this process, handed
over as soon as it is released, and then an advisory ``flock`` on ``<database>.writelock``
shared with other processes (polled every millisecond: ``flock`` has no timeout). Readers take
no lock (WAL lets them run beside the writer).

Both waits are bounded by the database ``timeout`` option; past it, the transaction goes ahead
and SQLite's own locking decides, as without this backend. Settings select it for SQLite
(``ENGINE = "mailcore.db.sqlite3"``).

It also requires SQLite 3.35 or later (``UPDATE ... RETURNING``, which the store's UID allocator
and quota charge rely on: one statement each, no fallback). Debian 12 ships 3.40 and its
Python 3.11 uses it; an older library stops the process at start with a clear message."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.sqlite3 import base

from mailcore.private import touch_private

MIN_SQLITE = (3, 35)


def check_sqlite_version(version: tuple[int, ...]) -> None:
    """Raise ``ImproperlyConfigured`` when the SQLite library is older than :data:`MIN_SQLITE`."""
    if tuple(version[:2]) < MIN_SQLITE:
        raise ImproperlyConfigured(
            f"Correio needs SQLite {'.'.join(map(str, MIN_SQLITE))} or later (UPDATE ... "
            f"RETURNING); this Python uses SQLite {'.'.join(map(str, version))}. Use a newer "
            "system (Debian 12 ships 3.40) or PostgreSQL (DATABASE_URL)."
        )

check_sqlite_version(base.Database.sqlite_version_info)

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
_registry_lock = threading.Lock()
_locks: dict[str, _WriteLock] = {}


class _WriteLock:
    """The write lock of one database file: a thread lock, then a file lock."""

    def __init__(self, path: str | None):
        self.thread_lock = threading.Lock()
        self.fd = None
        if path:
            try:
                self.fd = os.open(f"{path}.writelock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                                  0o600)
            except OSError:  # a read-only folder: the thread lock alone, SQLite for the rest
                self.fd = None

    def acquire(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        if not self.thread_lock.acquire(timeout=timeout):
            return False
        if self.fd is None:
            return True
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self.thread_lock.release()
                    return False
                time.sleep(0.001)

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.thread_lock.release()


def _write_lock(name) -> _WriteLock:
    name = str(name)
    in_memory = name == ":memory:" or "mode=memory" in name
    key = name if in_memory else os.path.abspath(name)
    with _registry_lock:
        lock = _locks.get(key)
        if lock is None:
            lock = _locks[key] = _WriteLock(None if in_memory else key)
        return lock


def _forget_locks_after_fork() -> None:
    # A child shares its parent's open file description (and so its flock) and copies its
    # thread locks in whatever state: it starts afresh.
    global _registry_lock, _locks
    _registry_lock = threading.Lock()
    _locks = {}


os.register_at_fork(after_in_child=_forget_locks_after_fork)


class LockingCursor(base.SQLiteCursorWrapper):
    """Takes the write lock around a write statement run outside a transaction."""

    wrapper: DatabaseWrapper

    def _needs_lock(self, query: str) -> bool:
        return not self.wrapper.in_write_transaction and query.lstrip()[:7].upper().startswith(
            _WRITES
        )

    def execute(self, query, params=None):
        if not self._needs_lock(query):
            return super().execute(query, params)
        self.wrapper.take_write_lock()
        try:
            return super().execute(query, params)
        finally:
            self.wrapper.drop_write_lock()

    def executemany(self, query, param_list):
        if not self._needs_lock(query):
            return super().executemany(query, param_list)
        self.wrapper.take_write_lock()
        try:
            return super().executemany(query, param_list)
        finally:
            self.wrapper.drop_write_lock()


class DatabaseWrapper(base.DatabaseWrapper):
    in_write_transaction = False  # statements inside need no lock of their own
    _held: _WriteLock | None = None

    def take_write_lock(self) -> None:
        lock = _write_lock(self.settings_dict["NAME"])
        timeout = float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))
        if lock.acquire(timeout):
            self._held = lock

    def drop_write_lock(self) -> None:
        lock, self._held = self._held, None
        if lock is not None:
            lock.release()

    def get_new_connection(self, conn_params):
        # Private by default: SQLite creates a new database 0644 & ~umask and gives its -wal and
        # -shm files the database's mode, so a database made 0600 here keeps all three private.
        name = str(conn_params.get("database", ""))
        if name and name != ":memory:" and not name.startswith("file:"):
            touch_private(Path(name))
        return super().get_new_connection(conn_params)

    def create_cursor(self, name=None):
        cursor = self.connection.cursor(factory=LockingCursor)
        cursor.wrapper = self
        return cursor

    def _start_transaction_under_autocommit(self):
        self.take_write_lock()
        self.in_write_transaction = True
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._end_transaction()
            raise

    def _end_transaction(self) -> None:
        self.in_write_transaction = False
        self.drop_write_lock()

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._end_transaction()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._end_transaction()

    def _close(self):
        try:
            return super()._close()
        finally:
            self._end_transaction()
