"""IMAP SORT and THREAD (RFC 5256; SORT=DISPLAY, RFC 5957) over the keys cached at delivery
(:mod:`mailcore.mime.sortkeys`): one query reads a few short columns of the folder, the rest is
done in memory, nothing is parsed.

- :func:`sort_uids`: the messages in the order of the sort criteria, ties in UID order (which
  is message-number order, RFC 5256 §3);
- :func:`thread_uids`: threads as nested lists, by ORDEREDSUBJECT (§2.1 subject, sent date) or
  REFERENCES (§2.2, the algorithm of Jamie Zawinski's threader, described step by step there)."""

from __future__ import annotations

import hashlib
import threading
from array import array
from collections import OrderedDict
from collections.abc import Sequence

from django.db import connection

from mailcore.models import Message

_TABLE = Message._meta.db_table

# The column each sort key reads (RFC 5256 §3, RFC 5957 §3), all in the index
# message_sort_keys. DATE is the sent date, the internal date when the message has none. Dates
# are read as the database's text (UTC, one format: its order is the dates' order), which
# spares converting 100,000 of them.
SORT_COLUMNS = {
    "ARRIVAL": "CAST(internal_date AS TEXT)",
    "CC": "sort_cc",
    "DATE": "CAST(COALESCE(date, internal_date) AS TEXT)",
    "FROM": "sort_from",
    "SIZE": "size",
    "SUBJECT": "sort_subject",
    "TO": "sort_to",
    "DISPLAYFROM": "display_from",
    "DISPLAYTO": "display_to",
}


def _rows(folder_id: int, columns: Sequence[str], uids: Sequence[int]) -> list[tuple]:
    """``(uid, *columns)`` of the folder's messages among ``uids``, in UID order."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT uid, {', '.join(columns)} FROM {_TABLE} WHERE folder_id = %s ORDER BY uid",
            [folder_id],
        )
        rows = cursor.fetchall()
    if len(uids) != len(rows):
        wanted = set(uids)
        rows = [row for row in rows if row[0] in wanted]
    return rows


_NUMERIC = {"SIZE"}


def sort_uids(folder_id: int, uids: Sequence[int], criteria: Sequence[tuple[str, bool]]
              ) -> list[int]:
    """``uids`` (the messages a search found) ordered by ``criteria``: ``(key, reverse)``
    pairs, the first the most significant. Ties go in UID order (message-number order, RFC
    5256 §3), whatever REVERSE says.

    The database sorts, reading only the index message_sort_keys, and returns UIDs alone.
    Keys are stored case-mapped, so comparing them is comparing code points: SQLite's default
    (BINARY, UTF-8 bytes), the "C" collation on PostgreSQL."""
    collate = ' COLLATE "C"' if connection.vendor == "postgresql" else ""
    order = ", ".join(
        SORT_COLUMNS[key] + ("" if key in _NUMERIC else collate) + (" DESC" if reverse else "")
        for key, reverse in criteria
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT uid FROM {_TABLE} WHERE folder_id = %s ORDER BY {order}, uid", [folder_id]
        )
        ordered = [row[0] for row in cursor.fetchall()]
    if len(ordered) != len(uids):
        wanted = set(uids)
        ordered = [uid for uid in ordered if uid in wanted]
    return ordered


# --- THREAD ------------------------------------------------------------------------------------

# Threads depend only on what a message's row says at delivery (ids, references, subject,
# date), which never changes, and a UID is never reused in a folder: the threads of one set of
# UIDs in one folder are always the same. Clients ask again for every page of a threaded view
# (Roundcube), so the last few answers are kept, bounded by the messages they hold.
_CACHE: OrderedDict[tuple, list] = OrderedDict()
_CACHE_LOCK = threading.Lock()
MAX_CACHED_MESSAGES = 200_000  # about 25 MB of nodes


def thread_uids(folder_id: int, uidvalidity: int, uids: Sequence[int], algorithm: str
                ) -> list[ThreadNode]:
    """The threads of ``uids`` by ``algorithm`` (ORDEREDSUBJECT or REFERENCES), in order. The
    nodes returned are shared: read them, never change them."""
    digest = hashlib.blake2b(array("Q", uids).tobytes(), digest_size=16).digest()
    key = (folder_id, uidvalidity, algorithm, len(uids), digest)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    if algorithm == "ORDEREDSUBJECT":
        threads = _ordered_subject(
            _rows(folder_id, ["sort_subject", SORT_COLUMNS["DATE"]], uids))
    else:
        threads = _references(_rows(folder_id, [
            "message_id", "in_reply_to", '"references"', "sort_subject", "subject_is_reply",
            SORT_COLUMNS["DATE"]], uids))
    with _CACHE_LOCK:
        _CACHE[key] = threads
        while sum(k[3] for k in _CACHE) > MAX_CACHED_MESSAGES and len(_CACHE) > 1:
            _CACHE.popitem(last=False)
    return threads


def _ordered_subject(rows: list[tuple]) -> list[ThreadNode]:
    """RFC 5256 §2.1 ORDEREDSUBJECT: messages grouped by base subject, each group in sent-date
    order with the first as the parent of all the others; groups ordered by their first."""
    groups: dict[str, list[tuple]] = {}
    for uid, subject, date in rows:
        groups.setdefault(subject, []).append((date, uid))
    threads = []
    for members in groups.values():
        members.sort()
        root = ThreadNode()
        root.date, root.uid = members[0]
        for date, uid in members[1:]:
            child = ThreadNode()
            child.date, child.uid, child.parent = date, uid, root
            root.children.append(child)
        threads.append(root)
    threads.sort(key=_sort_key)
    return threads


class ThreadNode:
    """A message in a thread (``uid``), or a dummy parent (``uid`` None: a message referred to
    but absent, kept only where it joins several threads at the top, RFC 5256 §2.2 step 4)."""

    __slots__ = ("uid", "date", "subject", "reply", "parent", "children")

    def __init__(self):
        self.uid: int | None = None  # None: a dummy (a message referred to but not in the set)
        self.date = None
        self.subject = ""
        self.reply = False
        self.parent: ThreadNode | None = None
        self.children: list[ThreadNode] = []

    def is_ancestor_of(self, other: ThreadNode) -> bool:
        """Whether self is ``other`` or above it (walks up: threads are shallow)."""
        while other is not None:
            if other is self:
                return True
            other = other.parent
        return False


def _link(parent: ThreadNode, child: ThreadNode) -> None:
    if child.parent is not None:
        child.parent.children.remove(child)
    child.parent = parent
    parent.children.append(child)


def _references(rows: list[tuple]) -> list[ThreadNode]:
    """RFC 5256 §2.2 THREAD=REFERENCES."""
    table: dict[str, ThreadNode] = {}
    nodes: list[ThreadNode] = []

    def container(message_id: str) -> ThreadNode:
        node = table.get(message_id)
        if node is None:
            node = table[message_id] = ThreadNode()
            nodes.append(node)
        return node

    for uid, message_id, in_reply_to, references, subject, reply, date in rows:
        refs = references.split() if references else []
        if not refs and in_reply_to:
            refs = [in_reply_to]
        node = table.get(message_id) if message_id else None
        if node is None or node.uid is not None:
            # Step 1: a message without an id, or with one already taken, is its own container.
            node = ThreadNode()
            nodes.append(node)
            if message_id and message_id not in table:
                table[message_id] = node
        node.uid, node.date, node.subject, node.reply = uid, date, subject, reply
        # Step 1A: link the references in order, never changing an existing parent and never
        # making a loop.
        previous = None
        for ref in refs:
            current = container(ref)
            if (previous is not None and current.parent is None
                    and not current.is_ancestor_of(previous)):
                _link(previous, current)
            previous = current
        # Step 1B: the message's parent is its last reference. An earlier parent is dropped
        # first (it is probably wrong), and no link is made that would be a loop.
        if node.parent is not None and node.parent is not previous:
            node.parent.children.remove(node)
            node.parent = None
        if previous is not None and node.parent is None and not node.is_ancestor_of(previous):
            _link(previous, node)
    # Steps 2 to 4: the root set, dummies pruned.
    roots = _prune([node for node in nodes if node.parent is None], top=True)
    # Step 5: roots with the same base subject gathered.
    roots = _group_by_subject(roots)
    # Step 6: siblings in sent-date order, a dummy dated by its first child.
    for root in roots:
        _sort_tree(root)
    roots.sort(key=_sort_key)
    return roots


def _prune(roots: list[ThreadNode], top: bool) -> list[ThreadNode]:
    """RFC 5256 §2.2 step 4: drop childless dummies; replace a dummy by its children, except at
    the top where it stays when it has several. Iterative: a thread may be very deep."""

    def replacement(node: ThreadNode, at_top: bool) -> list[ThreadNode]:
        if node.uid is None:
            if not node.children:
                return []
            if not at_top or len(node.children) == 1:
                return node.children
        return [node]

    for node in _post_order(roots):
        children = []
        for child in node.children:
            children.extend(replacement(child, False))
        for child in children:
            child.parent = node
        node.children = children
    out = []
    for root in roots:
        kept = replacement(root, top)
        for node in kept:
            node.parent = None
        out.extend(kept)
    return out


def _post_order(roots: list[ThreadNode]) -> list[ThreadNode]:
    """Every node under ``roots`` (included), children before their parent."""
    order = []
    stack = list(roots)
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(node.children)
    order.reverse()
    return order


def _subject_of(node: ThreadNode) -> tuple[str, bool]:
    source = node if node.uid is not None else node.children[0]
    return source.subject, source.reply


def _group_by_subject(roots: list[ThreadNode]) -> list[ThreadNode]:
    """RFC 5256 §2.2 step 5: roots whose base subjects match are merged."""
    by_subject: dict[str, ThreadNode] = {}
    for root in roots:
        subject, reply = _subject_of(root)
        if not subject:
            continue
        old = by_subject.get(subject)
        if old is None or (root.uid is None and old.uid is not None) or (
                old.uid is not None and root.uid is not None and _subject_of(old)[1]
                and not reply):
            by_subject[subject] = root
    out: list[ThreadNode] = []
    merged: set[int] = set()
    position: dict[int, int] = {}
    for root in roots:
        if root.parent is not None:
            continue  # already gathered under a dummy made for an earlier root
        subject, reply = _subject_of(root)
        other = by_subject.get(subject) if subject else None
        if other is None or other is root:
            position[id(root)] = len(out)
            out.append(root)
            continue
        merged.add(id(root))
        if other.uid is None and root.uid is None:
            for child in root.children:
                child.parent = other
            other.children.extend(root.children)
        elif other.uid is None:
            root.parent = other
            other.children.append(root)
        elif root.uid is None:
            # The dummy takes the table's place (RFC 5256 §2.2 step 5C).
            other.parent = root
            root.children.append(other)
            by_subject[subject] = root
            _replace(out, position, other, root)
        elif reply and not _subject_of(other)[1]:
            root.parent = other
            other.children.append(root)
        else:
            dummy = ThreadNode()
            for child in (other, root):
                child.parent = dummy
                dummy.children.append(child)
            by_subject[subject] = dummy
            _replace(out, position, other, dummy)
    return [node for node in out if node is not None]


def _replace(out: list, position: dict[int, int], old: ThreadNode, new: ThreadNode) -> None:
    """Put ``new`` where ``old`` is among the roots kept, or keep it now when ``old`` comes
    later (it is then skipped: it has a parent). Roots are sorted afterwards anyway."""
    index = position.pop(id(old), None)
    if index is None:
        position[id(new)] = len(out)
        out.append(new)
    else:
        out[index] = new
        position[id(new)] = index


def _sort_key(node: ThreadNode):
    # A dummy is dated by its first child, and ties go by that child's message number.
    first = node
    while first.uid is None and first.children:
        first = first.children[0]
    return (first.date, first.uid or 0)


def _sort_tree(root: ThreadNode) -> None:
    for node in _post_order([root]):
        node.children.sort(key=_sort_key)
