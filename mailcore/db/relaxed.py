"""Transactions whose commit does not wait for the disk, for bookkeeping that may be lost in a
power failure without harm: the sign-in throttle's counters, web sessions, ``last_login``.

A durable commit costs an ``fsync`` (SQLite with ``synchronous=FULL``; PostgreSQL's default
``synchronous_commit = on``): 2-10 ms each on these machines, and a webmail sign-in made five of
them around a 30-45 ms password hash (issue 13). What a crash can cost here: the last fraction of
a second of these writes. A lost throttle reservation gives a guesser one more attempt per power
failure; a lost session signs a user out; nothing of the mail is in these transactions, and the
database stays consistent either way:

- PostgreSQL: ``SET LOCAL synchronous_commit TO OFF`` for the transaction (the commit returns
  once its WAL record is written, before it is flushed; the server flushes within
  ``wal_writer_delay``, 200 ms by default).
- SQLite in WAL mode: ``PRAGMA synchronous = NORMAL`` around the transaction (the commit is
  appended to the WAL without an ``fsync``; the next durable commit or checkpoint syncs it).
  SQLite refuses to change it inside a transaction, so inside an outer ``atomic`` block (tests,
  a caller's transaction) the outer transaction's durability applies.

Mail, queue entries and account changes keep their durable commits: use this for nothing a user
or a sender was told is stored."""

from contextlib import contextmanager

from django.db import connections, transaction


@contextmanager
def relaxed_atomic(using: str = "default"):
    """``transaction.atomic()`` whose commit does not wait for the disk (see the module)."""
    connection = connections[using]
    vendor = connection.vendor
    toggle = vendor == "sqlite" and not connection.in_atomic_block
    if toggle:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            # The connection's own level (its init_command's), read once per connection.
            raw, previous = getattr(connection, "_correio_synchronous", (None, None))
            if raw is not connection.connection:
                cursor.execute("PRAGMA synchronous")
                previous = int(cursor.fetchone()[0])
                connection._correio_synchronous = (connection.connection, previous)
            cursor.execute("PRAGMA synchronous = NORMAL")
    try:
        with transaction.atomic(using=using):
            if vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
            yield
    finally:
        if toggle and connection.connection is not None:
            with connection.cursor() as cursor:
                cursor.execute(f"PRAGMA synchronous = {previous}")
