"""The mail page of one folder: its message list (keyset pages, newest first), the folder list
and an empty reading pane (the context every view of the mail page shares is
``common.mail_context``). htmx requests get the message list (or just the next rows) with the
folder list out of band; plain requests get the whole page."""

from django.shortcuts import redirect, render
from django.urls import reverse

from mailcore.models import FolderRole, Message
from mailcore.services.folders import get_folder_by_role
from mailcore.services.sending import delivery_status
from webmail.conversations import conversation_page, summarise
from webmail.views.common import (
    TEMPLATE,
    listed_folder,
    mail_context,
    mailbox_required,
    page_of,
    render_partials,
    user_settings,
)


@mailbox_required
def index(request):
    inbox = get_folder_by_role(request.mailbox, FolderRole.INBOX)
    return redirect("webmail:folder", folder_id=inbox.pk)


def folder_page(request, folder, cursor):
    messages = Message.objects.filter(folder=folder)
    return page_of(messages, cursor)


@mailbox_required
def folder_view(request, folder_id: int):
    folder = listed_folder(request, folder_id)
    cursor = request.GET.get("before")
    list_url = reverse("webmail:folder", args=[folder.pk])
    conversations = None
    if user_settings(request.mailbox).conversation_list:
        # Grouped by conversation (webmail.conversations); single messages otherwise.
        page = conversation_page(folder, cursor)
        conversations = summarise(request.mailbox, folder, page.messages)
    else:
        page = folder_page(request, folder, cursor)
    context = mail_context(request, folder=folder, page=page, list_url=list_url,
                           conversations=conversations)
    if folder.role == FolderRole.SENT:
        statuses = delivery_status(request.mailbox, [m.message_id for m in page.messages])
        context["badges"] = {key: status.summary for key, status in statuses.items()}
    if request.htmx:
        if request.GET.get("rows"):
            return render_partials(request, ["message-rows"], context)
        return render_partials(request, ["message-list", "folder-list", "reader"], context)
    return render(request, TEMPLATE, context)
