"""Quota: a mailbox's stored bytes against its limit. Every quota decision of every door is here.

The rule (:func:`exceeds`): a mailbox may hold up to ``quota`` bytes; 0 means unlimited. It is
applied at two moments:

- before an IMAP APPEND literal is accepted (:func:`usage` with :func:`exceeds`, summing the
  command's literals);
- at RCPT (:func:`check_can_receive`): a mailbox already full refuses the recipient before the
  data is sent (SMTP 452 4.2.2, RFC 5321 §4.5.3.1.10 and RFC 3463 §3.3), the sender retries later;
- when bytes are stored (:func:`charge`): delivery, the SMTP group commit, IMAP APPEND and COPY
  add their bytes and raise ``QuotaExceeded`` when that goes over (IMAP ``[OVERQUOTA]``,
  RFC 9208 §4.3); the caller's transaction then stores nothing.

Removing mail (EXPUNGE, MOVE's source, folder deletion) charges a negative amount, which never
raises. Usage is kept in ``Mailbox.used_bytes`` by these statements only."""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection

from mailcore.exceptions import QuotaExceeded
from mailcore.models import Mailbox, Message

_MAILBOX = Mailbox._meta.db_table


def exceeds(quota: int, used: int) -> bool:
    """True when ``used`` bytes are more than the mailbox may hold (0 = unlimited)."""
    return bool(quota) and used > quota


def check_can_receive(mailbox_ids: Iterable[int]) -> None:
    """Raise ``QuotaExceeded`` when any of the mailboxes is full: it could not take one byte
    more. One query, for the recipients of one RCPT."""
    ids = list(dict.fromkeys(mailbox_ids))
    if not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT quota, used_bytes FROM {_MAILBOX} WHERE id IN ({', '.join(['%s'] * len(ids))})",
            ids,
        )
        rows = cursor.fetchall()
    for quota, used in rows:
        if exceeds(quota, used + 1):
            raise QuotaExceeded()


def folder_usage(folder_id: int) -> tuple[int, int, int]:
    """``(octets, deleted messages, their octets)`` of a folder: IMAP STATUS SIZE (RFC 8438),
    DELETED and DELETED-STORAGE (RFC 9208 §4.2: what an EXPUNGE would free)."""
    return folders_usage([folder_id]).get(folder_id, (0, 0, 0))


# Folder ids per statement: far below SQLite's bound on parameters.
_USAGE_BATCH = 500


def folders_usage(folder_ids: Iterable[int]) -> dict[int, tuple[int, int, int]]:
    """:func:`folder_usage` of many folders, one grouped query (per 500 folders): LIST-STATUS
    (RFC 5819) asks it of every folder listed. Folders without messages are absent."""
    ids = list(dict.fromkeys(folder_ids))
    usage: dict[int, tuple[int, int, int]] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(ids), _USAGE_BATCH):
            batch = ids[start : start + _USAGE_BATCH]
            cursor.execute(
                f"SELECT folder_id, COALESCE(SUM(size), 0),"
                f" COALESCE(SUM(CASE WHEN deleted THEN 1 ELSE 0 END), 0),"
                f" COALESCE(SUM(CASE WHEN deleted THEN size ELSE 0 END), 0)"
                f" FROM {Message._meta.db_table}"
                f" WHERE folder_id IN ({', '.join(['%s'] * len(batch))}) GROUP BY folder_id",
                batch,
            )
            for folder_id, size, deleted, deleted_size in cursor.fetchall():
                usage[folder_id] = (int(size), int(deleted), int(deleted_size))
    return usage


def charge(mailbox_id: int, delta: int, *, enforce: bool = False) -> None:
    """Add ``delta`` bytes (negative for removed mail) to the mailbox's usage. With ``enforce``,
    raise ``QuotaExceeded`` when that takes it over its quota; call it inside the transaction
    that stores the bytes, before storing them, so that nothing is stored then.

    One ``UPDATE ... RETURNING``: the row lock (PostgreSQL) or the write lock (SQLite) it takes
    makes check and update one step, so two deliveries racing cannot both fit in the last
    bytes."""
    if not delta:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_MAILBOX} SET used_bytes = used_bytes + %s WHERE id = %s"
            " RETURNING quota, used_bytes",
            [delta, mailbox_id],
        )
        row = cursor.fetchone()
    if enforce and delta > 0 and row is not None and exceeds(*row):
        quota, used = row
        raise QuotaExceeded(f"{used} bytes would exceed the quota of {quota}")


@dataclass(frozen=True)
class Usage:
    """What a person is shown: bytes used, the limit (0 = unlimited) and the share used."""

    used: int
    limit: int

    @property
    def percent(self) -> float:
        return round(100.0 * self.used / self.limit, 1) if self.limit else 0.0

    @property
    def low(self) -> int:
        return self.limit * 8 // 10

    @property
    def high(self) -> int:
        return self.limit * 95 // 100


def usage_of(mailbox: Mailbox) -> Usage:
    """:func:`usage` from a mailbox row read earlier in the same unit of work that has changed
    nothing since (a web page's GET): no query."""
    return Usage(mailbox.used_bytes, mailbox.quota)


def usage(mailbox_id: int) -> Usage:
    """The mailbox's usage as :func:`charge` keeps it (one indexed read), ``Usage(0, 0)`` when it
    does not exist: the webmail's meter, IMAP GETQUOTA (RFC 9208 §4.2), and checking several
    APPEND literals with one query."""
    row = Mailbox.objects.filter(pk=mailbox_id).values_list("used_bytes", "quota").first()
    return Usage(*row) if row is not None else Usage(0, 0)
