"""What a Message row holds and what removing one does to the rows that refer to it.

A folder holds one Message row per message, with the fields every door reads cached at
delivery (envelope, body structure, preview, thread: parsed once, never again). The store's hot
paths (delivery, EXPUNGE, MOVE) write these rows with hand-written SQL; this module keeps what
the ORM would otherwise have done for them in one place:

- :func:`message_fields` and :func:`thread_id`: the cached columns of a new row;
- :func:`release_references`: what deleting rows does to other tables' foreign keys to them.
  A raw ``DELETE`` skips the ``on_delete`` of those keys (the webmail's
  ``Composition.replied``/``forwarded`` are ``SET_NULL``), and the database then refuses the
  commit (issue 16: a message replied to could not be moved or expunged). This applies each
  key's ``on_delete`` as declared, so the store needs no knowledge of the apps above it."""

import functools
import hashlib
from collections.abc import Sequence

from django.db import connection
from django.db.models import CASCADE, DO_NOTHING, SET_NULL

from mailcore.mime.parse import ParsedMessage
from mailcore.mime.sortkeys import sort_fields
from mailcore.models import Message

MAX_THREAD_REFERENCES = 20
_BATCH = 500


def format_addresses(addresses: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{name} <{addr}>" if name else addr for name, addr in addresses)


def thread_id(mailbox_id: int, parsed: ParsedMessage) -> str:
    """The thread of a message: that of any message it refers to in the same mailbox (so a
    conversation spans folders, Sent included), else one named after its root message-id."""
    refs = [ref for ref in [*parsed.references, parsed.in_reply_to] if ref][-MAX_THREAD_REFERENCES:]
    if refs:
        existing = (
            Message.objects.filter(mailbox_id=mailbox_id, message_id__in=refs)
            .values_list("thread_id", flat=True)
            .first()
        )
        if existing:
            return existing
    root = refs[0] if refs else parsed.message_id
    if not root:
        root = f"{parsed.subject}\0{parsed.date}\0{format_addresses(parsed.from_)}"
    return hashlib.sha256(root.encode("utf-8", "replace")).hexdigest()[:32]


def message_fields(parsed: ParsedMessage) -> dict:
    """The cached columns of a Message row, from the parsed message (bounded to the columns)."""
    name, addr = parsed.from_[0] if parsed.from_ else ("", "")
    return {
        "subject": parsed.subject,
        "from_name": name[:500],
        "from_addr": addr[:500],
        "to_addrs": format_addresses(parsed.to),
        "cc_addrs": format_addresses(parsed.cc),
        "date": parsed.date,
        "message_id": parsed.message_id[:998],
        "in_reply_to": parsed.in_reply_to[:998],
        "references": " ".join(parsed.references),
        "preview": parsed.preview[:256],
        "has_attachments": parsed.has_attachments,
        "envelope": parsed.envelope,
        "structure": parsed.structure,
        **sort_fields(parsed.subject, parsed.envelope),
    }


@functools.cache
def _referring_keys() -> tuple:
    """Every foreign key to Message, hidden ones (``related_name="+"``) included, as
    ``(field, on_delete)``; found the way Django's own deletion collector finds them."""
    keys = []
    for relation in Message._meta.get_fields(include_hidden=True):
        if not (relation.auto_created and not relation.concrete
                and (relation.one_to_one or relation.one_to_many)):
            continue
        on_delete = relation.on_delete
        if on_delete not in (SET_NULL, CASCADE, DO_NOTHING):
            # PROTECT, RESTRICT, SET_DEFAULT, SET(...): not used today; decide then what a
            # mail client's EXPUNGE should do about them rather than guess now.
            raise NotImplementedError(
                f"{relation.related_model.__name__}.{relation.field.name}: on_delete "
                f"{on_delete.__name__} is not handled by the store's raw deletes"
            )
        keys.append((relation.field, on_delete))
    return tuple(keys)


def release_references(pks: Sequence[int], moved_to: dict[int, int] | None = None) -> None:
    """Do to the rows referring to Messages ``pks`` what their keys' ``on_delete`` says, before
    a raw ``DELETE`` of those Messages: ``SET_NULL`` keys are cleared, ``CASCADE`` rows deleted.

    A message moved keeps its identity for the user: with ``moved_to`` (old pk -> pk of the copy
    in the target folder) ``SET_NULL`` keys follow the message to its copy instead (a reply
    being written keeps setting ``\\Answered`` on the original after it was archived)."""
    if not pks:
        return
    moved_to = moved_to or {}
    for field, on_delete in _referring_keys():
        if on_delete is DO_NOTHING:
            continue
        if on_delete is CASCADE:
            field.model._base_manager.filter(**{f"{field.name}__in": list(pks)}).delete()
            continue
        table, column = field.model._meta.db_table, field.column
        with connection.cursor() as cursor:
            for start in range(0, len(pks), _BATCH):
                batch = list(pks[start : start + _BATCH])
                marks = ", ".join(["%s"] * len(batch))
                followed = [pk for pk in batch if pk in moved_to]
                if followed:
                    cases = " ".join(["WHEN %s THEN %s"] * len(followed))
                    value = f"CASE {column} {cases} ELSE NULL END"
                    params = [v for pk in followed for v in (pk, moved_to[pk])]
                else:
                    value, params = "NULL", []
                cursor.execute(
                    f"UPDATE {table} SET {column} = {value} WHERE {column} IN ({marks})",
                    [*params, *batch],
                )
