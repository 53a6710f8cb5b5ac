"""Live updates by polling a cheap "changes since" endpoint (every few seconds, from htmx).

The page carries a fingerprint of every folder's mod-sequence; while it matches, the answer is
an empty 204 after one small query. When it differs, the answer is out-of-band swaps: new rows
on top of the list, changed rows re-drawn, expunged rows removed (RFC 7162 style changes since a
mod-sequence, via ``mailcore.services.folders.changes_since``), and fresh folder counts. More
than MAX_LIVE_ROWS changes (``?since=0`` on a big folder) are never loaded: the client is told
to reload the page (HX-Refresh)."""

from django.http import HttpResponse
from django_htmx.http import HttpResponseClientRefresh

from mailcore.models import Folder
from mailcore.services.folders import changes_since
from webmail.conversations import live_conversations
from webmail.views.common import (
    live_signature,
    mail_context,
    mailbox_required,
    render_partials,
    user_settings,
)

MAX_LIVE_ROWS = 200


def _int(value: str) -> int | None:
    return int(value) if value.isdigit() else None


@mailbox_required
def poll_view(request):
    sig = live_signature(request.mailbox.pk)
    if request.GET.get("sig") == sig:
        return HttpResponse(status=204)
    folder = None
    folder_id = _int(request.GET.get("folder", ""))
    if folder_id is not None:
        folder = Folder.objects.filter(pk=folder_id, mailbox=request.mailbox).first()
    since = _int(request.GET.get("since", ""))
    uidnext = _int(request.GET.get("uidnext", ""))
    new_rows, changed_rows, expunged = [], [], []
    if folder is not None and since is not None and uidnext is not None:
        changes = changes_since(folder, since, limit=MAX_LIVE_ROWS)
        if not changes.complete:
            # More changes than one poll carries (a client asking since 0, or away for long),
            # or older than the kept tombstones: the page reloads its list instead.
            return HttpResponseClientRefresh()
        for message in changes.messages:
            (new_rows if message.uid >= uidnext else changed_rows).append(message)
        new_rows.sort(key=lambda m: (m.internal_date, m.pk), reverse=True)
        expunged = [{"folder": folder.pk, "uid": uid} for uid in changes.expunged]
    context = mail_context(
        request, folder=folder, new_rows=new_rows, rows=changed_rows, removed=expunged,
        live=folder is not None and since is not None,
    )
    if folder is not None and user_settings(request.mailbox).conversation_list:
        live_conversations(request.mailbox, folder, context)
    return render_partials(request, ["live-result", "folder-list", "poll"], context)

