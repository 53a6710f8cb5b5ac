"""Writing mail: the compose form as a page and as a pane (in place of the reading pane), reply,
reply-all and forward, drafts saved automatically and reopened, attachments uploaded one
request each (so the browser can show progress) and removed, and address autocomplete.

A plain form post works without JavaScript; htmx requests get the pane or small fragments.
The typed text lives in a :class:`webmail.models.Composition` row before anything else
happens, so no error (a bad address, a full mailbox, a network failure on the way back) loses
it. Sending is in :mod:`webmail.views.sending`; every change of a composition's state is made
by :mod:`webmail.composing`."""

from django.contrib import messages as flash
from django.http import Http404, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, push_url

from mailcore.exceptions import MailError
from mailcore.mime.compose import ComposeError
from mailcore.models import FolderRole, Message
from mailcore.services import contacts as address_book
from mailcore.services.folders import get_folder_by_role
from webmail import composing, contacts
from webmail.forms import ComposeForm
from webmail.models import ComposeState, Composition
from webmail.views.common import (
    COMPOSE_TEMPLATE,
    compose_context,
    error_text,
    mail_context,
    mailbox_required,
    owned_composition,
    owned_message,
    page_of,
    render_compose,
    render_partials,
    user_settings,
)
from webmail.views.sending import send_composition

MAX_UPLOADS = 50


def open_composition(request, composition):
    if request.htmx:
        response = render_compose(request, composition)
        push_url(response, reverse("webmail:compose", args=[composition.pk]))
        return response
    return redirect("webmail:compose", composition_id=composition.pk)


# --- Starting ---------------------------------------------------------------------------------
# Starting a message creates a composition (and may copy a forwarded message's attachments), so
# it is a POST, never a GET; and composing.make_room keeps a bound on those being written.


@mailbox_required
def new_view(request):
    """GET shows a page that starts a message by POST (prefilled from ``?to=&cc=&subject=``, as a
    mailto: handler would, or ``?group=`` from the address book); POST creates the
    composition."""
    if request.method == "GET":
        prefill = [(name, request.GET[name][:2000]) for name in ("to", "cc", "subject", "group")
                   if request.GET.get(name)]
        return render(request, "webmail/compose_start.html", {"prefill": prefill})
    if request.method != "POST":
        return HttpResponseNotAllowed(["GET", "POST"])
    fields = {}
    for name in ("to", "cc", "subject"):
        value = request.POST.get(name, "")
        if value:
            fields[name] = value[:2000]
    group = request.POST.get("group", "")
    if group.isdigit():  # "new message to group" from the address book
        fields["to"] = composing.format_pairs(address_book.group_members(request.mailbox,
                                                                         int(group)))
    composing.make_room(request.mailbox)
    composition = composing.start(request.mailbox, user_settings(request.mailbox), **fields)
    return open_composition(request, composition)


@require_POST
@mailbox_required
def reply_view(request, message_id: int, kind: str):
    original = owned_message(request, message_id)
    prefs = user_settings(request.mailbox)
    composing.make_room(request.mailbox)
    if kind == "forward":
        composition = composing.start_forward(
            request.mailbox, prefs, original,
            as_attachment=request.POST.get("as") == "attachment",
        )
    else:
        composition = composing.start_reply(
            request.mailbox, prefs, original, reply_all=kind == "reply-all"
        )
    return open_composition(request, composition)


@require_POST
@mailbox_required
def edit_draft_view(request, message_id: int):
    draft = owned_message(request, message_id)
    if draft.folder.role != FolderRole.DRAFTS:
        raise Http404("Not a draft")
    composing.make_room(request.mailbox)
    composition = composing.start_from_draft(request.mailbox, draft)
    return open_composition(request, composition)


# --- The form ----------------------------------------------------------------------------------


def save_now(request, composition: Composition) -> str:
    """Save the composition to Drafts if it changed; the status line to show."""
    saved = composing.save_to_drafts(composition, request.mailbox)
    if saved is None:
        return ""
    return f"Draft saved at {timezone.localtime(saved):%H:%M:%S}."


@mailbox_required
def compose_view(request, composition_id: int):
    composition = owned_composition(request, composition_id)
    if composition.state != ComposeState.EDITING:
        # Sent meanwhile (another tab, or this one before Undo ran out): show where it went.
        if request.method == "POST":
            return HttpResponse("This message was already sent.", status=409)
        flash.info(request, "This message was already sent.")
        return redirect("webmail:outbox" if composition.state == ComposeState.SCHEDULED
                        else "webmail:index")
    if request.method != "POST":
        return render_compose(request, composition, page=request.GET.get("page") == "1")
    form = ComposeForm(request.POST)
    if not form.is_valid():
        errors = {name: " ".join(e) for name, e in form.errors.items()}
        # The form comes back with what was typed (not the last saved copy), unsaved.
        typed = {name: request.POST.get(name, "") for name in form.fields}
        composing.fill(composition, {**typed, **form.cleaned_data}, save=False)
        return render_compose(request, composition, errors=errors, status=400)
    composing.fill(composition, form.cleaned_data)
    action = request.POST.get("action", "save")
    if action in ("send", "later"):
        return send_composition(request, composition, form, later=action == "later")
    try:
        status_text = save_now(request, composition) or "Draft saved."
    except (MailError, ComposeError) as exc:
        message = error_text(exc) if isinstance(exc, MailError) else exc.message
        return render_compose(request, composition, status=400,
                              status_text=f"Draft not saved: {message}")
    if request.htmx:
        return render_compose(request, composition, status_text=status_text)
    flash.info(request, status_text)
    return redirect("webmail:compose", composition_id=composition.pk)


@require_POST
@mailbox_required
def autosave_view(request, composition_id: int):
    """Save what is typed (every few seconds while typing, and on leaving the form). Answers
    the status line; a failure leaves the form as it is and says so."""
    composition = owned_composition(request, composition_id)
    if composition.state != ComposeState.EDITING:
        return HttpResponse(status=204)
    form = ComposeForm(request.POST)
    if not form.is_valid():
        return _save_status(request, "Draft not saved: " + "; ".join(
            f"{k}: {' '.join(v)}" for k, v in form.errors.items()), status=400)
    composing.fill(composition, form.cleaned_data, save=False)
    try:
        status_text = save_now(request, composition)
    except (MailError, ComposeError) as exc:
        message = error_text(exc) if isinstance(exc, MailError) else exc.message
        return _save_status(request, f"Draft not saved: {message}", status=400)
    if not status_text:
        return HttpResponse(status=204)
    return _save_status(request, status_text)


def _save_status(request, text: str, status: int = 200):
    html = render_to_string(f"{COMPOSE_TEMPLATE}#save-status", {"status_text": text},
                            request=request)
    return HttpResponse(html, status=status)


@require_POST
@mailbox_required
def discard_view(request, composition_id: int):
    composition = owned_composition(request, composition_id)
    composing.discard(composition, request.mailbox)
    drafts = get_folder_by_role(request.mailbox, FolderRole.DRAFTS)
    if request.htmx and not request.POST.get("whole_page"):
        context = mail_context(request, folder=drafts, toast="Draft discarded.")
        return render_partials(request, ["reader", "folder-list", "toast"], context)
    flash.info(request, "Draft discarded.")
    if request.htmx:  # from the whole-page form: leave it for the Drafts folder
        return HttpResponseClientRedirect(reverse("webmail:folder", args=[drafts.pk]))
    return redirect("webmail:folder", folder_id=drafts.pk)


# --- Attachments ---------------------------------------------------------------------------


def _attachments_response(request, composition, *, error="", status=200):
    context = compose_context(request, composition, upload_error=error)
    if request.htmx or request.headers.get("X-Requested-With") == "XMLHttpRequest":
        return render(request, f"{COMPOSE_TEMPLATE}#compose-attachments", context, status=status)
    if error:
        flash.error(request, error)
    return redirect("webmail:compose", composition_id=composition.pk)


@require_POST
@mailbox_required
def attach_view(request, composition_id: int):
    """Add the uploaded files (several at once, or one per request for progress bars)."""
    composition = owned_composition(request, composition_id)
    if composition.state != ComposeState.EDITING:
        return HttpResponse("This message was already sent.", status=409)
    files = request.FILES.getlist("files")
    if not files:
        return _attachments_response(request, composition, error="Choose a file to attach.",
                                     status=400)
    try:
        composing.attach(composition, files, max_uploads=MAX_UPLOADS)
    except composing.AttachmentRefused as refused:
        return _attachments_response(request, composition, error=refused.message, status=413)
    return _attachments_response(request, composition)


@require_POST
@mailbox_required
def detach_view(request, composition_id: int, upload_id: int):
    composition = owned_composition(request, composition_id)
    if composition.state != ComposeState.EDITING:
        return HttpResponse("This message was already sent.", status=409)
    composing.detach(composition, upload_id)
    return _attachments_response(request, composition)


# --- Autocomplete -------------------------------------------------------------------------------


@require_GET
@mailbox_required
def contacts_view(request):
    """Suggestions for the last address being typed in a To/Cc/Bcc field, as JSON."""
    query = request.GET.get("q", "")[:100]
    found = contacts.suggest(request.mailbox, user_settings(request.mailbox), query)
    return JsonResponse({
        "results": [
            {"address": c.address, "name": c.name,
             "label": f"Group: {c.name} ({len(c.members)})" if c.members else "",
             "text": composing.format_pairs(list(c.members) or [(c.name, c.address)])}
            for c in found
        ]
    })


def drafts_page(request):
    """The Drafts folder page (where a discarded or cancelled message leads)."""
    drafts = get_folder_by_role(request.mailbox, FolderRole.DRAFTS)
    page = page_of(Message.objects.filter(folder=drafts), None)
    return mail_context(request, folder=drafts, page=page,
                        list_url=reverse("webmail:folder", args=[drafts.pk]))
