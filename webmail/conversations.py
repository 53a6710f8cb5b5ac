"""The conversation list (issue 17): a folder's messages grouped by thread (the ``thread_id``
cached on every message row at delivery: References/In-Reply-To, then subject), one row per
conversation with its message count across folders (Sent included), its senders newest first
and whether any is unread.

Speed on a 100,000-message folder: a conversation's row stands at its newest message in the
folder, so a page is found by walking the folder's messages newest first on the same
``(folder, -internal_date, -id, thread_id)`` index and keyset cursor as the message list (the
index alone: no row is read), keeping only those that are the newest of their thread in the
folder (one query per batch of candidates; after the first page, an EXISTS for a newer
message of the same thread). Each conversation is thus on exactly one page, and no page reads
more than :data:`MAX_BATCHES` batches. Then one query reads the page's rows and one the
summaries of its threads."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import CharField, Exists, OuterRef, Q
from django.db.models.functions import Cast

from mailcore.models import Folder, FolderRole, Mailbox, Message
from webmail.views.common import LIST_COLUMNS, Page, cursor_of, decode_cursor, older_than

# Rows walked per query: the page's 50 conversations of up to ten messages in one query
# (reading only the list's index, some 1 ms).
BATCH = 500
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


def _shadowed(candidates: list[tuple[int, str]]) -> set[int]:
    """The ids of candidates ``(id, thread_id)`` with a newer message of their
    thread in their folder (by internal date, then id): one query, each EXISTS probing the
    ``(mailbox, thread_id)`` index."""
    ids = [pk for pk, thread in candidates if thread]
    if not ids:
        return set()
    newer = Message.objects.filter(
        mailbox=OuterRef("mailbox"), thread_id=OuterRef("thread_id"),
        folder=OuterRef("folder"),
    ).filter(Q(internal_date__gt=OuterRef("internal_date"))
             | Q(internal_date=OuterRef("internal_date"), id__gt=OuterRef("id")))
    # order_by(): Message's default ordering (folder, then uid) would join the folder and
    # mailbox tables to sort by their names.
    return set(Message.objects.filter(pk__in=ids).annotate(newer=Exists(newer))
               .filter(newer=True).order_by().values_list("id", flat=True))


def conversation_page(folder: Folder, cursor_text: str | None) -> Page:
    """One page of conversations (their newest message in the folder), newest first.

    The walk reads only ``(id, thread_id)`` of the candidates (and the date of the last one
    walked, for the cursor); the list's columns are read for the page's rows alone. On the first page no candidate can have a
    newer message outside the walk, so no EXISTS query is needed there."""
    size = settings.CORREIO_WEBMAIL_PAGE_SIZE
    cursor = decode_cursor(cursor_text)
    start_cursor = cursor
    taken: list[int] = []
    seen: set[str] = set()
    last = None
    more = None
    for _ in range(MAX_BATCHES):
        qs = Message.objects.filter(folder=folder).order_by("-internal_date", "-id")
        if cursor is not None:
            when, pk = cursor
            qs = qs.filter(older_than(when, pk))
        # No date per candidate: converting 200 dates cost more than the query.
        rows = list(qs.values_list("id", "thread_id")[:BATCH])
        shadowed = set()
        if start_cursor is not None:
            # Only a thread's first row in this walk can stand for it; ask about those alone.
            firsts, keys = [], set(seen)
            for pk, thread in rows:
                if thread and thread not in keys:
                    keys.add(thread)
                    firsts.append((pk, thread))
            shadowed = _shadowed(firsts)
        for index, row in enumerate(rows):
            last = row
            pk, thread = row
            key = thread or f"#{pk}"
            if key in seen:
                continue  # its conversation stands at a newer message
            seen.add(key)  # this row, or a newer one if it is shadowed, stands for it
            if pk in shadowed:
                continue
            taken.append(pk)
            if len(taken) == size:
                if index < len(rows) - 1:
                    more = True  # this batch holds older messages still
                break
        if len(rows) < BATCH and more is None:
            more = False
        if len(taken) == size or more is not None or last is None:
            break
        cursor = _position(last[0], by_id={})
        if cursor is None:
            break  # the last one was just deleted: this page ends here
    by_id = {m.pk: m for m in Message.objects.filter(pk__in=taken).only(*LIST_COLUMNS)
             .order_by()}
    messages = [by_id[pk] for pk in taken if pk in by_id]
    end = _position(last[0], by_id) if last is not None else None
    if end is None and messages:
        end = (messages[-1].internal_date, messages[-1].pk)
    if end is None:
        more = False
    elif more is None:
        more = Message.objects.filter(folder=folder).filter(older_than(*end)).exists()
    next_cursor = cursor_of(*end) if more else None
    return Page(messages, next_cursor, cursor_text if start_cursor else None)


def _position(pk: int, by_id: dict[int, Message]):
    """``(internal_date, id)`` of a walked message, the keyset position after it; None when it
    no longer exists."""
    if pk in by_id:
        return by_id[pk].internal_date, pk
    when = Message.objects.filter(pk=pk).values_list("internal_date", flat=True).first()
    return (when, pk) if when is not None else None


def summarise(mailbox: Mailbox, folder: Folder, rows: list[Message]) -> dict[int, Conversation]:
    """Each row's conversation (keyed by the row's id): counts, unread, senders newest first.
    Trash and Junk count only when they are the folder shown."""
    threads = {r.thread_id for r in rows if r.thread_id}
    aside = [role for role in SET_ASIDE if role != folder.role]
    # Unordered in SQL so that the (mailbox, thread_id) index is used rather than a walk of
    # the whole mailbox in date order; the page's threads are few, sorted here. By the date's
    # text, which sorts as the date does (one time zone, fixed-width fields; a missing
    # fraction sorts first) and costs no datetime conversion per row.
    found = sorted(
        Message.objects.filter(mailbox=mailbox, thread_id__in=threads)
        .exclude(folder__role__in=aside).order_by()
        .annotate(date_text=Cast("internal_date", CharField()))
        .values_list("date_text", "id", "thread_id", "from_name", "from_addr", "seen",
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
    return message.pk not in _shadowed([(message.pk, message.thread_id)])
