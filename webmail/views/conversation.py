"""Opening a conversation of the conversation list: its messages stacked oldest to newest
(Trash and Junk left out unless the message opened is there), each expandable, the newest
open; opening it marks its messages read, and its actions apply to all of it."""

from collections import defaultdict

from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from mailcore.models import Message
from mailcore.services.flags import set_flags
from webmail import reading
from webmail.conversations import SET_ASIDE
from webmail.views.common import (
    TEMPLATE,
    mail_context,
    mailbox_required,
    owned_message,
    page_of,
    render_partials,
)
from webmail.views.message import MAX_THREAD, images_allowed


def _thread(request, message) -> list[Message]:
    if not message.thread_id:
        return [message]
    qs = Message.objects.filter(mailbox=request.mailbox, thread_id=message.thread_id)
    aside = [role for role in SET_ASIDE if role != message.folder.role]
    rows = list(qs.exclude(folder__role__in=aside).select_related("folder").order_by()
                [: MAX_THREAD * 4])
    rows.sort(key=lambda m: (m.internal_date, m.pk))
    rows = rows[-MAX_THREAD:]
    return rows if any(m.pk == message.pk for m in rows) else [*rows, message]


@require_GET
@mailbox_required
def conversation_view(request, message_id: int):
    message = owned_message(request, message_id)
    messages = _thread(request, message)
    unread = defaultdict(list)
    folders = {}
    for item in messages:
        if not item.seen:
            unread[item.folder_id].append(item.uid)
            folders[item.folder_id] = item.folder
            item.seen = True
    for folder_id, uids in unread.items():
        set_flags(folders[folder_id], uids, ["\\Seen"], "add")
    items = []
    for item in messages:
        allow = images_allowed(request, item)
        items.append({
            "message": item,
            "body_url": reverse("webmail:body", args=[item.pk]) + ("?images=1" if allow else ""),
            "attachments": reading.attachments(item.structure),
        })
    context = {"conversation_items": items, "message": message, "newest": messages[-1]}
    folder = message.folder
    if request.htmx:
        context.update(mail_context(request, folder=folder))
        return render_partials(request, ["reader", "folder-list"], context)
    page = page_of(Message.objects.filter(folder=folder), None)
    context.update(mail_context(request, folder=folder, page=page,
                                list_url=reverse("webmail:folder", args=[folder.pk])))
    return render(request, TEMPLATE, context)
