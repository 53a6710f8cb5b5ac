"""The mail page: folders, the message list of one folder (keyset pages, newest first) and an
empty reading pane. htmx requests get the message list (or just the next rows) with the folder
list out of band; plain requests get the whole page."""

from django.conf import settings
from django.shortcuts import redirect, render
from django.urls import reverse

from mailcore.models import FolderRole, Message
from mailcore.services.mailboxes import get_folder_by_role
from mailcore.services.sending import delivery_status
from webmail.views.common import (
    TEMPLATE,
    folder_items,
    live_signature,
    mailbox_required,
    owned_folder,
    page_of,
    render_partials,
    user_settings,
)


def mail_context(request, *, folder=None, page=None, list_url="", query="", scope="folder",
                 **extra) -> dict:
    mailbox = request.mailbox
    folders = folder_items(mailbox)
    if folder is not None:
        # The folder list was just read: take the folder's counters from it (an action may
        # have changed them since the view loaded the folder) rather than query again.
        fresh = next((item.folder for item in folders if item.folder.pk == folder.pk), None)
        if fresh is not None:
            for field in ("highestmodseq", "uidnext", "unseen_count", "message_count"):
                setattr(folder, field, getattr(fresh, field))
    context = {
        "mailbox": mailbox,
        "prefs": user_settings(mailbox),
        "folders": folders,
        "folder_names": {item.folder.pk: item.label for item in folders},
        "folder": folder,
        "page": page,
        "list_url": list_url,
        "query": query,
        "scope": scope,
        "sent_view": folder is not None and folder.role in (FolderRole.SENT, FolderRole.DRAFTS),
        "live_sig": live_signature(mailbox.pk, [item.folder for item in folders]),
        "poll_seconds": settings.CORREIO_WEBMAIL_POLL_SECONDS,
    }
    context.update(extra)
    return context


@mailbox_required
def index(request):
    inbox = get_folder_by_role(request.mailbox, FolderRole.INBOX)
    return redirect("webmail:folder", folder_id=inbox.pk)


def folder_page(request, folder, cursor):
    messages = Message.objects.filter(folder=folder)
    return page_of(messages, cursor)


@mailbox_required
def folder_view(request, folder_id: int):
    folder = owned_folder(request, folder_id)
    cursor = request.GET.get("before")
    page = folder_page(request, folder, cursor)
    list_url = reverse("webmail:folder", args=[folder.pk])
    context = mail_context(request, folder=folder, page=page, list_url=list_url)
    if folder.role == FolderRole.SENT:
        statuses = delivery_status(request.mailbox, [m.message_id for m in page.messages])
        context["badges"] = {key: status.summary for key, status in statuses.items()}
    if request.htmx:
        if request.GET.get("rows"):
            return render_partials(request, ["message-rows"], context)
        return render_partials(request, ["message-list", "folder-list", "reader"], context)
    return render(request, TEMPLATE, context)
