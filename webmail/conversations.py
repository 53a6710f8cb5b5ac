"""The conversation list (issue 17): a folder's messages grouped by thread (the ``thread_id``
cached on every message row at delivery: References/In-Reply-To, then subject), one row per
conversation with its message count across folders (Sent included), its senders newest first
and whether any is unread.

Speed on a 100,000-message folder: a conversation's row stands at its newest message in the
folder, so a page is found by walking the folder's messages newest first on the same
``(folder, -internal_date, -id)`` index and keyset cursor as the message list, keeping only
those that are the newest of their thread in the folder (one query per batch of candidates,
an EXISTS for a newer message of the same thread). Each conversation is thus on exactly one
page, and no page reads more than :data:`MAX_BATCHES` batches. The summaries are one query
over the page's threads."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Exists, OuterRef, Q

from mailcore.models import Folder, FolderRole, Mailbox, Message
from webmail.views.common import LIST_COLUMNS, Page, decode_cursor, encode_cursor

BATCH = 200
MAX_BATCHES = 10
MAX_SUMMARY_ROWS = 20_000
# Mail in these folders does not count in a conversation seen from elsewhere.
SET_ASIDE = (FolderRole.TRASH, FolderRole.JUNK)


@dataclass
class Conversation:
    thread_id: str
    count: int = 1
    unread: int = 0
    flagged: bool = False
    senders: list[str] = field(default_factory=list)
    has_attachments: bool = False


def _shadowed(candidates: list[Message]) -> set[int]:
    """The ids of candidates with a newer message of their thread in their folder (by
    internal date, then id): one query, each EXISTS probing the ``(mailbox, thread_id)``
    index."""
    ids = [m.pk for m in candidates if m.thread_id]
    if not ids:
        return set()
    newer = Message.objects.filter(
        mailbox=OuterRef("mailbox"), thread_id=OuterRef("thread_id"),
        folder=OuterRef("folder"),
    ).filter(Q(internal_date__gt=OuterRef("internal_date"))
             | Q(internal_date=OuterRef("internal_date"), id__gt=OuterRef("id")))
    return set(Message.objects.filter(pk__in=ids).annotate(newer=Exists(newer))
               .filter(newer=True).values_list("id", flat=True))


def conversation_page(folder: Folder, cursor_text: str | None) -> Page:
    """One page of conversations (their newest message in the folder), newest first."""
    size = settings.CORREIO_WEBMAIL_PAGE_SIZE
    cursor = decode_cursor(cursor_text)
    start_cursor = cursor
    taken: list[Message] = []
    seen: set[str] = set()
    last = None
    exhausted = False
    rows: list[Message] = []
    for _ in range(MAX_BATCHES):
        qs = (Message.objects.filter(folder=folder).only(*LIST_COLUMNS)
              .order_by("-internal_date", "-id"))
        if cursor is not None:
            when, pk = cursor
            qs = qs.filter(Q(internal_date__lt=when) | Q(internal_date=when, id__lt=pk))
        rows = list(qs[:BATCH])
        if len(rows) < BATCH:
            exhausted = True
        shadowed = _shadowed(rows)
        for row in rows:
            last = row
            key = row.thread_id or f"#{row.pk}"
            if key in seen or row.pk in shadowed:
                continue  # its conversation stands at a newer message
            seen.add(key)
            taken.append(row)
            if len(taken) == size:
                break
        if len(taken) == size or exhausted or last is None:
            break
        cursor = (last.internal_date, last.pk)
    more = last is not None and Message.objects.filter(folder=folder).filter(
        Q(internal_date__lt=last.internal_date)
        | Q(internal_date=last.internal_date, id__lt=last.pk)).exists()
    return Page(taken, encode_cursor(last) if more else None,
                cursor_text if start_cursor else None)


def summarise(mailbox: Mailbox, folder: Folder, rows: list[Message]) -> dict[int, Conversation]:
    """Each row's conversation (keyed by the row's id): counts, unread, senders newest first.
    Trash and Junk count only when they are the folder shown."""
    threads = {r.thread_id for r in rows if r.thread_id}
    aside = [role for role in SET_ASIDE if role != folder.role]
    # Unordered in SQL so that the (mailbox, thread_id) index is used rather than a walk of
    # the whole mailbox in date order; the page's threads are few, sorted here.
    found = sorted(
        Message.objects.filter(mailbox=mailbox, thread_id__in=threads)
        .exclude(folder__role__in=aside).order_by()
        .values_list("internal_date", "id", "thread_id", "from_name", "from_addr", "seen",
                     "flagged", "has_attachments", "folder__role")[:MAX_SUMMARY_ROWS],
        reverse=True)
    own = mailbox.address.lower()
    by_thread: dict[str, Conversation] = {}
    for _when, _pk, thread, name, addr, seen, flagged, attached, role in found:
        conv = by_thread.get(thread)
        if conv is None:
            conv = by_thread[thread] = Conversation(thread, count=0)
        conv.count += 1
        conv.unread += not seen
        conv.flagged = conv.flagged or flagged
        conv.has_attachments = conv.has_attachments or attached
        who = "me" if role in (FolderRole.SENT, FolderRole.DRAFTS) or addr.lower() == own \
            else (name.split()[0] if name.strip() else addr)
        if who not in conv.senders and len(conv.senders) < 4:
            conv.senders.append(who)
    out = {}
    for row in rows:
        conv = by_thread.get(row.thread_id) if row.thread_id else None
        if conv is None:
            who = row.from_name.split()[0] if row.from_name.strip() else row.from_addr
            conv = Conversation(row.thread_id or "", unread=int(not row.seen),
                                flagged=row.flagged, senders=[who],
                                has_attachments=row.has_attachments)
        out[row.pk] = conv
    return out


def expand_to_conversations(mailbox: Mailbox, ids: list[int], *, folder_only: Folder | None,
                            limit: int) -> list[int]:
    """The ids of every message in the conversations of the given messages: in one folder
    (moves out of the folder shown) or everywhere but Trash and Junk (flags)."""
    threads = set(Message.objects.filter(mailbox=mailbox, pk__in=ids)
                  .exclude(thread_id="").values_list("thread_id", flat=True))
    if not threads:
        return ids
    qs = Message.objects.filter(mailbox=mailbox, thread_id__in=threads).order_by()
    if folder_only is not None:
        qs = qs.filter(folder=folder_only)
    else:
        qs = qs.exclude(folder__role__in=SET_ASIDE)
    return list(dict.fromkeys([*ids, *qs.values_list("id", flat=True)[:limit]]))[:limit]


def live_conversations(mailbox: Mailbox, folder: Folder, context: dict) -> None:
    """Turn a live update of the message list into one of the conversation list: a new
    message becomes its conversation's row on top, and the row its conversation stood at
    before goes; changed messages redraw only rows that are conversation rows."""
    new_rows = [m for m in context["new_rows"] if m.folder_id == folder.pk]
    newest_new: dict[str, Message] = {}
    for row in new_rows:  # newest first
        newest_new.setdefault(row.thread_id or f"#{row.pk}", row)
    fresh = {row.pk for row in newest_new.values()}
    removed = list(context["removed"])
    threads = [key for key in newest_new if not key.startswith("#")]
    if threads:
        previous = (Message.objects.filter(folder=folder, thread_id__in=threads)
                    .exclude(pk__in=[m.pk for m in new_rows]).order_by("-internal_date", "-id")
                    .values_list("thread_id", "pk", "uid"))
        stood: dict[str, tuple[int, int]] = {}
        for thread, pk, uid in previous[:MAX_SUMMARY_ROWS]:
            stood.setdefault(thread, (pk, uid))
        removed += [{"id": pk, "folder": folder.pk, "uid": uid} for pk, uid in stood.values()]
    shown = [m for m in context["rows"] if _stands(folder, m)]
    context["new_rows"] = [m for m in new_rows if m.pk in fresh]
    context["rows"] = shown
    context["removed"] = removed
    context["conversations"] = summarise(mailbox, folder, [*context["new_rows"], *shown])


def _stands(folder: Folder, message: Message) -> bool:
    """Whether the message is its conversation's row in the folder (its newest there)."""
    return message.pk not in _shadowed([message])
