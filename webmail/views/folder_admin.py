"""Folder administration: create (with parents, "Parent/Child"), rename and delete, through
``mailcore.services.folders``. Special folders are protected by the service. Trash and Junk
can be emptied (confirmed in the page first; a POST like every change)."""

from django.contrib import messages as flash
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from mailcore.exceptions import MailError
from mailcore.models import FolderRole
from mailcore.services.folders import (
    create_folder,
    delete_folder,
    empty_folder,
    get_folder_by_role,
    rename_folder,
)
from webmail.forms import FolderNameForm
from webmail.views.common import (
    error_text,
    mail_context,
    mailbox_required,
    owned_folder,
    render_partials,
)


def _done(request, *, go_to, toast, ok):
    if request.htmx:
        if ok:
            flash.success(request, toast)
            return HttpResponseClientRedirect(go_to)
        context = mail_context(request, toast=toast, toast_alert=True)
        return render_partials(request, ["toast"], context)
    (flash.success if ok else flash.error)(request, toast)
    return redirect(go_to)


def _name(request) -> str:
    form = FolderNameForm(request.POST)
    return form.cleaned_data["name"] if form.is_valid() else ""


@require_POST
@mailbox_required
def create_view(request):
    inbox = get_folder_by_role(request.mailbox, FolderRole.INBOX)
    try:
        folder = create_folder(request.mailbox, _name(request))
    except MailError as exc:
        back = reverse("webmail:folder", args=[inbox.pk])
        return _done(request, go_to=back, toast=error_text(exc), ok=False)
    return _done(request, go_to=reverse("webmail:folder", args=[folder.pk]),
                 toast=f"Created {folder.name}.", ok=True)


@require_POST
@mailbox_required
def rename_view(request, folder_id: int):
    folder = owned_folder(request, folder_id)
    try:
        renamed = rename_folder(request.mailbox, folder.name, _name(request))
    except MailError as exc:
        back = reverse("webmail:folder", args=[folder.pk])
        return _done(request, go_to=back, toast=error_text(exc), ok=False)
    return _done(request, go_to=reverse("webmail:folder", args=[renamed.pk]),
                 toast=f"Renamed to {renamed.name}.", ok=True)


@require_POST
@mailbox_required
def delete_view(request, folder_id: int):
    folder = owned_folder(request, folder_id)
    inbox = get_folder_by_role(request.mailbox, FolderRole.INBOX)
    try:
        delete_folder(request.mailbox, folder.name)
    except MailError as exc:
        back = reverse("webmail:folder", args=[folder.pk])
        return _done(request, go_to=back, toast=error_text(exc), ok=False)
    return _done(request, go_to=reverse("webmail:folder", args=[inbox.pk]),
                 toast=f"Deleted {folder.name}.", ok=True)


EMPTYABLE = (FolderRole.TRASH, FolderRole.JUNK)


@require_POST
@mailbox_required
def empty_view(request, folder_id: int):
    folder = owned_folder(request, folder_id)
    back = reverse("webmail:folder", args=[folder.pk])
    if folder.role not in EMPTYABLE:
        return _done(request, go_to=back, toast="Only Trash and Junk can be emptied.", ok=False)
    removed = empty_folder(folder)
    toast = f"Deleted {removed} message{'s' if removed != 1 else ''} for good."
    if request.htmx:
        flash.success(request, toast)  # shown by the page the client is redirected to
    return _done(request, go_to=back, ok=True, toast=toast)
