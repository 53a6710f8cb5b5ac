"""POP3 maildrops: the exclusive lock of a session, the snapshot of the INBOX it works on, the
bytes of its messages, and the deletions committed at QUIT (RFC 1939 §§3, 6, 8).

The lock is a lease kept in the database (``MaildropLock``), because runpop3 and runmail may run
as separate processes: a session renews it while it lives, so a crashed session's lock lapses by
itself. Sizes are those POP3 transmits (CRLF line ends, RFC 1939 §11), cached per stored message
(``Pop3Size``) so that STAT and LIST of a large maildrop never load message bodies."""

import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from mailcore.exceptions import MaildropLocked, MessageGone
from mailcore.mime.wire import crlf_size
from mailcore.models import Blob, Folder, FolderRole, MaildropLock, Message, Pop3Size
from mailcore.services import folders

DEFAULT_LEASE_SECONDS = 120.0
SIZE_BATCH = 200


@dataclass(frozen=True)
class MaildropMessage:
    uid: int
    size: int  # octets as POP3 sends it


@dataclass
class Maildrop:
    """A locked INBOX as of login: its messages in UID order, numbered from 1 by the session."""

    mailbox_id: int
    folder_id: int
    uidvalidity: int
    token: str
    messages: list[MaildropMessage] = field(default_factory=list)

    def unique_id(self, uid: int) -> str:
        """The UIDL of a message (RFC 1939 §7): UIDVALIDITY and UID never change for a message
        in the INBOX, so neither does this, across sessions, restarts and other deletions."""
        return f"{self.uidvalidity}.{uid}"


def _fill_sizes(shas: list[str]) -> dict[str, int]:
    """Compute and cache the POP3 size of the given blobs; return them."""
    sizes: dict[str, int] = {}
    for start in range(0, len(shas), SIZE_BATCH):
        batch = shas[start : start + SIZE_BATCH]
        for sha, data in Blob.objects.filter(pk__in=batch).values_list("sha256", "data"):
            sizes[sha] = crlf_size(bytes(data))
        Pop3Size.objects.bulk_create(
            [Pop3Size(blob_id=sha, size=sizes[sha]) for sha in batch if sha in sizes],
            ignore_conflicts=True,
        )
    return sizes


def record_sizes(blobs: list[tuple[str, bytes]]) -> None:
    """Cache the POP3 size of newly stored blobs ``(sha256, raw)``; called at delivery and
    append, in their transaction, so that the first POP3 login after new mail computes nothing
    (mail stored before this existed gets its size lazily in :func:`open_maildrop`)."""
    if not blobs:
        return
    table = Pop3Size._meta.db_table
    with connection.cursor() as cursor:
        for start in range(0, len(blobs), SIZE_BATCH):
            batch = blobs[start : start + SIZE_BATCH]
            cursor.execute(
                f"INSERT INTO {table} (blob_id, size) VALUES "
                + ", ".join(["(%s, %s)"] * len(batch))
                + " ON CONFLICT (blob_id) DO NOTHING",
                [value for sha, raw in batch for value in (sha, crlf_size(raw))],
            )


def _uncached(folder_id: int) -> list[str]:
    return list(
        Message.objects.filter(folder_id=folder_id, blob__pop3_size__isnull=True)
        .values_list("blob_id", flat=True)
        .distinct()
    )


def prepare_sizes(mailbox_id: int) -> int:
    """Cache the POP3 size of every INBOX message that has none yet (a maintenance helper:
    :func:`open_maildrop` does it for what it finds uncached). Returns how many were computed."""
    folder_id = Folder.objects.values_list("pk", flat=True).get(
        mailbox_id=mailbox_id, role=FolderRole.INBOX
    )
    return len(_fill_sizes(_uncached(folder_id)))


def open_maildrop(
    mailbox_id: int, *, lease_seconds: float = DEFAULT_LEASE_SECONDS, holder: str = ""
) -> Maildrop:
    """Lock the mailbox for one POP3 session and snapshot its INBOX (RFC 1939 §4: "acquire an
    exclusive-access lock on the maildrop"). Messages delivered later belong to the next session.

    Raises ``MaildropLocked`` while another session's lease is current ([IN-USE], RFC 2449
    §8.1.1). An expired lease (its session died) is taken over. The write transaction only
    takes the lock; the snapshot is read after it, and sizes not cached yet (mail never seen by
    POP3) are computed then, in small transactions of their own."""
    folder_id, uidvalidity = Folder.objects.values_list("pk", "uidvalidity").get(
        mailbox_id=mailbox_id, role=FolderRole.INBOX
    )
    now = timezone.now()
    token = secrets.token_hex(16)
    with transaction.atomic():
        MaildropLock.objects.filter(mailbox_id=mailbox_id, expires__lt=now).delete()
        try:
            with transaction.atomic():
                MaildropLock.objects.create(
                    mailbox_id=mailbox_id,
                    token=token,
                    holder=holder[:200],
                    acquired=now,
                    expires=now + timedelta(seconds=lease_seconds),
                )
        except IntegrityError:
            raise MaildropLocked() from None
    try:
        # Hand-written: at 5,000 messages the ORM's per-row cost was most of a login.
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT m.uid, m.blob_id, p.size FROM {Message._meta.db_table} m"
                f" LEFT JOIN {Pop3Size._meta.db_table} p ON p.blob_id = m.blob_id"
                " WHERE m.folder_id = %s ORDER BY m.uid",
                [folder_id],
            )
            rows = cursor.fetchall()
        missing = _fill_sizes(list({sha for _uid, sha, size in rows if size is None}))
        # A message expunged between the two reads has no size: it is not in the snapshot.
        messages = [
            MaildropMessage(uid, size if size is not None else missing[sha])
            for uid, sha, size in rows
            if size is not None or sha in missing
        ]
    except BaseException:
        release_maildrop(mailbox_id, token)
        raise
    return Maildrop(mailbox_id, folder_id, uidvalidity, token, messages)


def renew_maildrop(mailbox_id: int, token: str, lease_seconds: float) -> bool:
    """Extend a session's lease. False when the session no longer holds the lock."""
    expires = timezone.now() + timedelta(seconds=lease_seconds)
    return bool(
        MaildropLock.objects.filter(mailbox_id=mailbox_id, token=token).update(expires=expires)
    )


def release_maildrop(mailbox_id: int, token: str) -> None:
    """Drop a session's lock without changing anything (a dropped connection, RFC 1939 §6)."""
    MaildropLock.objects.filter(mailbox_id=mailbox_id, token=token).delete()


def load_message(folder_id: int, uid: int) -> bytes:
    """The stored bytes of a message of the maildrop. Raises ``MessageGone`` when another door
    (IMAP, the webmail) expunged it during the session."""
    data = (
        Message.objects.filter(folder_id=folder_id, uid=uid).values_list("blob__data", flat=True)
    ).first()
    if data is None:
        raise MessageGone()
    return bytes(data)


def load_messages(folder_id: int, uids: list[int]) -> dict[int, bytes]:
    """The stored bytes of several messages of the maildrop in one query (a session reading
    ahead while a client retrieves in order). Messages another door expunged are left out."""
    rows = Message.objects.filter(folder_id=folder_id, uid__in=uids).values_list(
        "uid", "blob__data"
    )
    return {uid: bytes(data) for uid, data in rows}


def close_maildrop(maildrop: Maildrop, deleted_uids: list[int]) -> list[int]:
    """The UPDATE state (RFC 1939 §6): remove the messages marked deleted, through the same
    expunge as IMAP (so IMAP sessions and the webmail see it), and release the lock, in one
    transaction. Returns the UIDs removed (those other doors removed first are not).

    Raises ``MaildropLocked`` when the session lost its lease to another session; nothing is
    deleted then."""
    with transaction.atomic():
        held = MaildropLock.objects.filter(
            mailbox_id=maildrop.mailbox_id, token=maildrop.token
        ).delete()[0]
        if not held:
            raise MaildropLocked("lock lost; deletions not committed")
        if not deleted_uids:
            return []
        folder = Folder.objects.get(pk=maildrop.folder_id)
        return folders.expunge(folder, sorted(deleted_uids), only_deleted=False)
