"""Writing mail: the compose form as a page and as a pane (in place of the reading pane), reply,
reply-all and forward, drafts saved automatically and reopened, attachments uploaded one
request each (so the browser can show progress) and removed, and address autocomplete.

A plain form post works without JavaScript; htmx requests get the pane or small fragments.
The typed text lives in a :class:`webmail.models.Composition` row before anything else
happens, so no error (a bad address, a full mailbox, a network failure on the way back) loses
it. Sending is in :mod:`webmail.views.sending`."""

from django.conf import settings
from django.contrib import messages as flash
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, push_url

from mailcore.exceptions import MailError
from mailcore.mime.compose import ComposeError, build_message
from mailcore.models import FolderRole, Message
from mailcore.services.drafts import discard_draft, save_draft
from mailcore.services.mailboxes import get_folder_by_role
from webmail import composing, contacts
from webmail.forms import ComposeForm
from webmail.models import ComposeState, Composition, Upload
from webmail.reading import clean_filename
from webmail.views.common import (
    TEMPLATE,
    error_text,
    mailbox_required,
    owned_message,
    page_of,
    user_settings,
)
from webmail.views.folder import mail_context

COMPOSE_TEMPLATE = "webmail/compose.html"
MAX_UPLOADS = 50


def owned_composition(request, composition_id: int) -> Composition:
    try:
        return Composition.objects.get(pk=composition_id, mailbox=request.mailbox)
    except Composition.DoesNotExist:
        raise Http404("No such message being written") from None


def attachment_limit() -> int:
    """What the attachments may weigh together: base64 grows data by a third, and the whole
    message must stay under the size limit (a little room left for headers and text)."""
    return max(0, settings.CORREIO_MAX_MESSAGE_SIZE * 3 // 4 - 64 * 1024)


def compose_context(request, composition: Composition, *, errors=None, reminder=False,
                    status_text="", **extra) -> dict:
    mailbox = request.mailbox
    uploads = list(composition.uploads.only("id", "filename", "content_type", "size"))
    forwarded = None
    if composition.forwarded_id:
        forwarded = Message.objects.filter(
            pk=composition.forwarded_id, mailbox=mailbox
        ).only("id", "subject", "size").first()
    used = sum(u.size for u in uploads) + (forwarded.size if forwarded else 0)
    prefs = user_settings(mailbox)
    return {
        "composition": composition,
        "identities": composing.identities(mailbox),
        "uploads": uploads,
        "forwarded": forwarded,
        "attachment_limit": attachment_limit(),
        "attachment_used": used,
        "errors": errors or {},
        "reminder": reminder,
        "status_text": status_text,
        "undo_seconds": prefs.undo_seconds,
        **extra,
    }


def render_compose(request, composition, *, status=200, page=False, **kwargs):
    """The pane for htmx; else the mail page with the compose form where the message list and
    reading pane are (a page of its own, working without JavaScript)."""
    context = compose_context(request, composition, **kwargs)
    url = reverse("webmail:compose", args=[composition.pk])
    if request.htmx and not page:
        response = render(request, f"{COMPOSE_TEMPLATE}#compose-pane", context, status=status)
        if request.method == "GET":
            push_url(response, url)
        return response
    folder = get_folder_by_role(request.mailbox, FolderRole.INBOX)
    context.update(mail_context(request, folder=folder, compose_page=True))
    return render(request, TEMPLATE, context, status=status)


def open_composition(request, composition):
    if request.htmx:
        return render_compose(request, composition)
    return redirect("webmail:compose", composition_id=composition.pk)


# --- Starting ---------------------------------------------------------------------------------


@require_GET
@mailbox_required
def new_view(request):
    fields = {}
    for name in ("to", "cc", "subject"):
        value = request.GET.get(name, "")
        if value:
            fields[name] = value[:2000]
    composition = composing.start(request.mailbox, user_settings(request.mailbox), **fields)
    return open_composition(request, composition)


@require_GET
@mailbox_required
def reply_view(request, message_id: int, kind: str):
    original = owned_message(request, message_id)
    prefs = user_settings(request.mailbox)
    if kind == "forward":
        composition = composing.start_forward(
            request.mailbox, prefs, original,
            as_attachment=request.GET.get("as") == "attachment",
        )
    else:
        composition = composing.start_reply(
            request.mailbox, prefs, original, reply_all=kind == "reply-all"
        )
    return open_composition(request, composition)


@require_GET
@mailbox_required
def edit_draft_view(request, message_id: int):
    draft = owned_message(request, message_id)
    if draft.folder.role != FolderRole.DRAFTS:
        raise Http404("Not a draft")
    composition = composing.start_from_draft(request.mailbox, draft)
    return open_composition(request, composition)


# --- The form ----------------------------------------------------------------------------------


def fill(composition: Composition, form: ComposeForm) -> None:
    """Copy what was typed into the composition (line ends as the browser sent them are made
    plain ``\\n``; the MIME layer writes CRLF)."""
    data = form.cleaned_data
    for name in ("to", "cc", "bcc", "subject"):
        setattr(composition, name, data.get(name) or "")
    composition.from_addr = data.get("from_addr") or composition.from_addr
    composition.body = (data.get("body") or "").replace("\r\n", "\n").replace("\r", "\n")


def save_now(request, composition: Composition) -> str:
    """Save the composition to Drafts if it changed since the last save. Returns the status
    line to show."""
    digest = composing.content_hash(composition)
    if digest == composition.saved_hash and composition.draft_uid:
        composition.save()
        return ""
    draft, _ = composing.to_draft(composition, strict=False, mailbox=request.mailbox)
    raw = build_message(draft, hostname=settings.CORREIO_HOSTNAME, include_bcc=True)
    message = save_draft(request.mailbox, raw, replace_uid=composition.draft_uid)
    composition.draft_uid = message.uid
    composition.saved_hash = digest
    composition.saved_at = timezone.now()
    composition.save()
    return f"Draft saved at {timezone.localtime(composition.saved_at):%H:%M:%S}."


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
        return render_compose(request, composition, errors=errors, status=400)
    fill(composition, form)
    composition.save()
    action = request.POST.get("action", "save")
    if action in ("send", "later"):
        from webmail.views.sending import send_composition

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
    fill(composition, form)
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
    if composition.state == ComposeState.EDITING:
        discard_draft(request.mailbox, composition.draft_uid)
        composition.delete()
    drafts = get_folder_by_role(request.mailbox, FolderRole.DRAFTS)
    if request.htmx and not request.POST.get("whole_page"):
        from webmail.views.common import render_partials

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
    used = sum(composition.uploads.values_list("size", flat=True))
    count = composition.uploads.count()
    limit = attachment_limit()
    for upload in files:
        if count >= MAX_UPLOADS:
            return _attachments_response(
                request, composition, status=413,
                error=f"At most {MAX_UPLOADS} attachments.")
        if used + upload.size > limit:
            return _attachments_response(
                request, composition, status=413,
                error=f"{clean_filename(upload.name)} is too large: attachments may total "
                      f"{filesizeformat(limit)}.")
        data = upload.read()
        Upload.objects.create(
            composition=composition,
            filename=clean_filename(upload.name or "attachment"),
            content_type=(upload.content_type or "application/octet-stream")[:255],
            size=len(data),
            data=data,
        )
        used += len(data)
        count += 1
    composition.save(update_fields=["updated"])
    return _attachments_response(request, composition)


@require_POST
@mailbox_required
def detach_view(request, composition_id: int, upload_id: int):
    composition = owned_composition(request, composition_id)
    if composition.state != ComposeState.EDITING:
        return HttpResponse("This message was already sent.", status=409)
    if upload_id == 0:
        composition.forwarded = None
        composition.save(update_fields=["forwarded", "updated"])
    else:
        Upload.objects.filter(pk=upload_id, composition=composition).delete()
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
             "text": composing.format_pairs([(c.name, c.address)])}
            for c in found
        ]
    })


def drafts_page(request):
    """The Drafts folder page (where a discarded or cancelled message leads)."""
    drafts = get_folder_by_role(request.mailbox, FolderRole.DRAFTS)
    page = page_of(Message.objects.filter(folder=drafts), None)
    return mail_context(request, folder=drafts, page=page,
                        list_url=reverse("webmail:folder", args=[drafts.pk]))
