"""Reading a message: the reading pane (marked read by a POST as it opens), the sanitised body in its
sandboxed frame, attachment downloads, the headers and the raw source.

Only the body frame ever carries mail HTML, under its own CSP (no script, no network unless
remote images are allowed) and the ``sandbox`` directive, so it stays inert even when opened
on its own. Downloads are ``Content-Disposition: attachment`` with ``nosniff``."""

from dataclasses import replace

from django.conf import settings
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST

from mailcore.blobstore import load_blob
from mailcore.mime.headers import decode_header_value, split_header_block
from mailcore.models import FolderRole, Message
from mailcore.services.flags import set_flags
from mailcore.services.quarantine import lookalike_warning, trust_notice
from mailcore.services.sending import delivery_status
from webmail import reading
from webmail.models import TrustedSender
from webmail.views.common import (
    LIST_COLUMNS,
    TEMPLATE,
    mail_context,
    mailbox_required,
    owned_message,
    page_of,
    render_partials,
    user_settings,
)

FRAME_CSP = (
    "default-src 'none'; img-src data:{remote}; style-src 'unsafe-inline'; font-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'; "
    "sandbox allow-popups allow-popups-to-escape-sandbox"
)
DOWNLOAD_CSP = "default-src 'none'; sandbox"
MAX_THREAD = 50
MAX_THREAD_ROWS = 1000


def images_allowed(request, message) -> bool:
    if request.GET.get("images") == "1":
        return True
    if reading.body_parts(message.structure)[0] is None:
        return False  # plain text shows no images: no need to ask the database
    if user_settings(request.mailbox).load_remote_images:
        return True
    return bool(message.from_addr) and TrustedSender.objects.filter(
        mailbox=request.mailbox, address=message.from_addr.lower()
    ).exists()


def reader_context(request, message, *, show_headers=False) -> dict:
    raw = load_blob(message.blob_id)
    allow = images_allowed(request, message)
    rendered = reading.render_body(raw, message.structure, allow_remote=allow)
    prefs = user_settings(request.mailbox)
    thread = []
    if prefs.conversation_view and message.thread_id:
        # Unordered in SQL so the (mailbox, thread_id) index is used, not a walk of the whole
        # mailbox in date order; a thread is small, so it is sorted here.
        thread = list(
            Message.objects.filter(mailbox=request.mailbox, thread_id=message.thread_id)
            .select_related("folder")
            .only(*LIST_COLUMNS, "folder__name", "folder__role")
            .order_by()[:MAX_THREAD_ROWS]
        )
        thread.sort(key=lambda m: (m.internal_date, m.pk), reverse=True)
        thread = thread[:MAX_THREAD]
        if len(thread) < 2:
            thread = []
    headers = []
    if show_headers:
        parsed, _ = split_header_block(raw)
        headers = [(name, decode_header_value(value)) for name, value in parsed]
    body_url = reverse("webmail:body", args=[message.pk]) + ("?images=1" if allow else "")
    delivery = None
    if message.folder.role == FolderRole.SENT and message.message_id:
        delivery = delivery_status(request.mailbox, [message.message_id]).get(message.message_id)
    trust = trust_notice(raw, message.blob_id, message.folder.role == FolderRole.JUNK,
                         settings.CORREIO_HOSTNAME)
    if message.folder.role not in (FolderRole.SENT, FolderRole.DRAFTS):
        # Judged by the MX at delivery against what the user knew then, and kept (issue 14).
        lookalike = lookalike_warning(request.mailbox.pk, message.blob_id)
        if lookalike:
            trust = replace(trust, warning=" ".join(filter(None, (trust.warning, lookalike))))
    return {
        "delivery": delivery,
        "trust": trust,
        # The opened Sent row is drawn again: with its delivery badge.
        "badges": {message.message_id: delivery.summary} if delivery else None,
        "message": message,
        "rendered": rendered,
        "attachments": reading.attachments(message.structure, raw),
        "thread": thread,
        "show_headers": show_headers,
        "headers": headers,
        "images_allowed": allow,
        "body_url": body_url,
    }


@mailbox_required
def message_view(request, message_id: int):
    # GET changes nothing: the page marks the message read with a POST to seen_view as it shows.
    message = owned_message(request, message_id)
    context = reader_context(request, message, show_headers=request.GET.get("headers") == "1")
    folder = message.folder
    if request.htmx:
        context.update(mail_context(request, folder=folder, m=message))
        return render_partials(request, ["reader", "message-row", "folder-list"], context)
    page = page_of(Message.objects.filter(folder=folder), None)
    context.update(
        mail_context(request, folder=folder, page=page,
                     list_url=reverse("webmail:folder", args=[folder.pk]))
    )
    return render(request, TEMPLATE, context)


@require_POST
@mailbox_required
def seen_view(request, message_id: int):
    """Mark a message read (sent by the reading pane as it opens); htmx gets the message's row
    and the folder counts out of band."""
    message = owned_message(request, message_id)
    if not message.seen:
        set_flags(message.folder, [message.uid], ["\\Seen"], "add")
        message.seen = True
    if not request.htmx:
        return redirect("webmail:message", message_id=message.pk)
    context = mail_context(request, folder=message.folder, m=message, message=message)
    return render_partials(request, ["message-row", "folder-list"], {**context, "row_oob": True})


@xframe_options_sameorigin
@mailbox_required
def body_view(request, message_id: int):
    message = owned_message(request, message_id)
    raw = load_blob(message.blob_id)
    allow = images_allowed(request, message)
    response = HttpResponse(
        reading.frame_html(raw, message.structure, allow_remote=allow),
        content_type="text/html; charset=utf-8",
    )
    response["Content-Security-Policy"] = FRAME_CSP.format(remote=" https: http:" if allow else "")
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response


def _download(data: bytes, content_type: str, filename: str) -> HttpResponse:
    from django.utils.http import content_disposition_header

    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = DOWNLOAD_CSP
    response["Cache-Control"] = "private, no-store"
    return response


@mailbox_required
def part_view(request, message_id: int, section: str):
    message = owned_message(request, message_id)
    part = reading.get_part(message.structure, section)
    if part is None:
        raise Http404("No such part")
    raw = load_blob(message.blob_id)
    info = next(
        (a for a in reading.attachments(message.structure) if a.section == section), None
    )
    filename = info.filename if info else f"part-{section}"
    return _download(reading.part_bytes(raw, part), reading.safe_content_type(part), filename)


@mailbox_required
def raw_view(request, message_id: int):
    message = owned_message(request, message_id)
    raw = load_blob(message.blob_id)
    if request.GET.get("download") == "1":
        return _download(raw, "message/rfc822", f"message-{message.pk}.eml")
    response = HttpResponse(raw, content_type="text/plain; charset=utf-8")
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = DOWNLOAD_CSP
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
@mailbox_required
def trust_sender(request, message_id: int):
    """Always show remote images from this message's sender."""
    message = owned_message(request, message_id)
    if message.from_addr:
        TrustedSender.objects.get_or_create(
            mailbox=request.mailbox, address=message.from_addr.lower()[:320]
        )
    if request.htmx:
        context = reader_context(request, message)
        context.update(mail_context(request, folder=message.folder))
        return render_partials(request, ["reader"], context)
    return redirect("webmail:message", message_id=message.pk)

