"""Search results in the message list, through ``mailcore.services.search`` (Gmail-style
operators, full-text index), in the current folder or in all folders, newest first, with the
same keyset pages as a folder."""

from urllib.parse import urlencode

from django.shortcuts import render
from django.urls import reverse

from mailcore.models import Message
from mailcore.services.search.messages import search_messages
from mailcore.services.search.query import parse_query
from webmail.views.common import (
    TEMPLATE,
    mail_context,
    mailbox_required,
    page_of,
    render_partials,
    request_folder_items,
)


@mailbox_required
def search_view(request):
    text = request.GET.get("q", "")[:1000]
    scope = "all" if request.GET.get("scope") == "all" else "folder"
    folder_id = request.GET.get("folder", "")
    folder = None
    if folder_id.isdigit():
        folder = next((item.folder for item in request_folder_items(request)
                       if item.folder.pk == int(folder_id)), None)
    query = parse_query(text)
    if not query.is_empty:
        results = search_messages(request.mailbox, query, folder if scope == "folder" else None)
    else:  # an empty search (or only "from:") finds nothing: it used to list every message
        results = Message.objects.none()
    page = page_of(results, request.GET.get("before"))
    params = {"q": text, "scope": scope}
    if folder is not None:
        params["folder"] = folder.pk
    list_url = reverse("webmail:search") + "?" + urlencode(params)
    context = mail_context(
        request, folder=folder, page=page, list_url=list_url, query=text, scope=scope,
        searching=True, search_problems=query.problems, search_empty=query.is_empty,
    )
    if request.htmx:
        if request.GET.get("rows"):
            return render_partials(request, ["message-rows"], context)
        return render_partials(request, ["message-list", "folder-list"], context)
    return render(request, TEMPLATE, context)
