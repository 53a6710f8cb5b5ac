"""Actions on selected messages, without page reloads: read/unread, flag, delete (to Trash; from
Trash for good), archive, junk, not junk, move; and undo of the last delete or move.

Every change goes through the service layer (``set_flags``, ``move_messages``, ``expunge``).
An htmx request gets out-of-band updates: the changed rows re-drawn or removed, the folder
counts, a toast (with an Undo button for moves) and, if the open message left, an empty
reading pane. A plain form post is redirected back."""

import secrets
from collections import defaultdict

from django.contrib import messages as flash
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from mailcore.exceptions import MailError
from mailcore.models import Folder, FolderRole, Message
from mailcore.services.flags import set_flags
from mailcore.services.folders import expunge, get_folder_by_role, move_messages
from webmail.conversations import expand_to_conversations, summarise
from webmail.forms import ActionForm
from webmail.views.common import (
    LIST_COLUMNS,
    error_text,
    mail_context,
    mailbox_required,
    owned_folder,
    page_of,
    render_partials,
)

FLAG_ACTIONS = {
    "read": ("\\Seen", "add"),
    "unread": ("\\Seen", "remove"),
    "flag": ("\\Flagged", "add"),
    "unflag": ("\\Flagged", "remove"),
}
MOVE_ROLES = {"archive": FolderRole.ARCHIVE, "junk": FolderRole.JUNK,
              "notjunk": FolderRole.INBOX}
UNDO_SESSION_KEY = "webmail_undo"
MAX_UNDO = 10
MAX_SELECTION = 5000


def _back(request, fallback: str) -> str:
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return fallback


def _remember_undo(request, moves: list[dict]) -> str:
    token = secrets.token_urlsafe(12)
    undo = dict(request.session.get(UNDO_SESSION_KEY, {}))
    undo[token] = moves
    # Keep only the most recent few.
    request.session[UNDO_SESSION_KEY] = dict(list(undo.items())[-MAX_UNDO:])
    return token


def _current_folder(request):
    folder_id = request.POST.get("folder", "")
    if folder_id.isdigit():
        return Folder.objects.filter(pk=int(folder_id), mailbox=request.mailbox).first()
    return None


def _respond(request, *, changed_ids, removed, toast, undo_token=None, status=200):
    """htmx: rows, counts, toast and reader out of band. Plain: back to the page."""
    if getattr(request, "conversation_rows", None) is not None:
        removed = [r for r in removed if r["id"] in request.conversation_rows]
        changed_ids = [pk for pk in changed_ids if pk in request.conversation_rows]
    folder = _current_folder(request)
    fallback = reverse("webmail:folder", args=[folder.pk]) if folder else reverse("webmail:index")
    if not request.htmx:
        if toast:
            flash.info(request, toast)
        return redirect(_back(request, fallback))
    rows = list(
        Message.objects.filter(pk__in=changed_ids, mailbox=request.mailbox).only(*LIST_COLUMNS)
    )
    open_id = request.POST.get("open", "")
    clear_reader = open_id.isdigit() and int(open_id) in {m["id"] for m in removed}
    context = mail_context(
        request, folder=folder, rows=rows, removed=removed, toast=toast,
        undo_token=undo_token, clear_reader=clear_reader,
    )
    if getattr(request, "conversation_rows", None) is not None and folder is not None:
        context["conversations"] = summarise(request.mailbox, folder, rows)
    names = ["action-result", "folder-list", "toast"]
    if clear_reader:
        names.append("reader")
    return render_partials(request, names, context, status=status)


@require_POST
@mailbox_required
def action_view(request):
    form = ActionForm(request.POST)
    if not form.is_valid():
        return _respond(request, changed_ids=[], removed=[], toast="Choose an action.")
    action = form.cleaned_data["action"]
    ids = form.cleaned_data["ids"][:MAX_SELECTION]
    if request.POST.get("conversations") == "1":
        request.conversation_rows = set(ids)  # the rows the list shows for them
        # The conversation list: an action applies to whole conversations (issue 17); moves
        # take its messages out of the folder shown, flags mark it everywhere.
        ids = expand_to_conversations(
            request.mailbox, ids, limit=MAX_SELECTION,
            folder_only=None if action in FLAG_ACTIONS else _current_folder(request))
    selected = list(
        Message.objects.filter(pk__in=ids, mailbox=request.mailbox)
        .select_related("folder")
        .only("id", "uid", "folder")
    )
    if not selected:
        return _respond(request, changed_ids=[], removed=[], toast="Select messages first.")
    by_folder: dict[int, list[Message]] = defaultdict(list)
    folders: dict[int, Folder] = {}
    for message in selected:
        by_folder[message.folder_id].append(message)
        folders[message.folder_id] = message.folder
    try:
        if action in FLAG_ACTIONS:
            flag, mode = FLAG_ACTIONS[action]
            for folder_id, rows in by_folder.items():
                set_flags(folders[folder_id], [m.uid for m in rows], [flag], mode)
            return _respond(request, changed_ids=[m.pk for m in selected], removed=[], toast="")
        return _move(request, action, form.cleaned_data.get("target"), by_folder, folders)
    except MailError as exc:
        return _respond(request, changed_ids=[], removed=[], toast=error_text(exc))


def _move(request, action, target_id, by_folder, folders):
    mailbox = request.mailbox
    if action == "move":
        if target_id is None:
            return _respond(request, changed_ids=[], removed=[], toast="Choose a folder.")
        target = owned_folder(request, target_id)
    elif action == "delete":
        target = get_folder_by_role(mailbox, FolderRole.TRASH)
    else:
        target = get_folder_by_role(mailbox, MOVE_ROLES[action])
    removed: list[dict] = []
    moves: list[dict] = []
    destroyed = 0
    for folder_id, rows in by_folder.items():
        source = folders[folder_id]
        uids = [m.uid for m in rows]
        removed += [{"id": m.pk, "folder": folder_id, "uid": m.uid} for m in rows]
        if source.pk == target.pk:
            if action == "delete":
                # Deleting from the Trash removes for good (there is no undo).
                destroyed += len(expunge(source, uids, only_deleted=False))
            else:
                removed = [r for r in removed if r["folder"] != folder_id]
            continue
        mapping = move_messages(source, uids, target)
        moves.append({"from": target.pk, "to": source.pk, "uids": sorted(mapping.values())})
    count = len(removed)
    noun = "message" if count == 1 else "messages"
    if destroyed and not moves:
        toast = f"Deleted {destroyed} {noun} for good."
    elif action == "delete":
        toast = f"Moved {count} {noun} to Trash."
    else:
        toast = f"Moved {count} {noun} to {target.get_role_display() if target.role else target.name}."
    token = _remember_undo(request, moves) if moves else None
    return _respond(request, changed_ids=[], removed=removed, toast=toast, undo_token=token)


@require_POST
@mailbox_required
def undo_view(request):
    """Move the messages of an earlier delete or move back where they came from."""
    token = request.POST.get("token", "")
    undo = dict(request.session.get(UNDO_SESSION_KEY, {}))
    moves = undo.pop(token, None)
    request.session[UNDO_SESSION_KEY] = undo
    toast = "Nothing to undo."
    if moves:
        restored = 0
        for move in moves:
            source = Folder.objects.filter(pk=move["from"], mailbox=request.mailbox).first()
            target = Folder.objects.filter(pk=move["to"], mailbox=request.mailbox).first()
            if source is None or target is None:
                continue
            try:
                restored += len(move_messages(source, move["uids"], target))
            except MailError as exc:
                toast = error_text(exc)
                break
        else:
            toast = f"Restored {restored} message{'s' if restored != 1 else ''}."
    folder = _current_folder(request)
    if not request.htmx:
        flash.info(request, toast)
        fallback = reverse("webmail:folder", args=[folder.pk]) if folder else "/"
        return redirect(_back(request, fallback))
    if folder is None:
        context = mail_context(request, toast=toast)
        return render_partials(request, ["toast", "folder-list"], context)
    page = page_of(Message.objects.filter(folder=folder), None)
    context = mail_context(
        request, folder=folder, page=page,
        list_url=reverse("webmail:folder", args=[folder.pk]), toast=toast,
    )
    return render_partials(request, ["message-list", "folder-list", "toast"], context)
