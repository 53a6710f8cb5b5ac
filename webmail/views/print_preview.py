"""Printing a message or its whole conversation, and previews of attachments in the reading
pane (issue 17).

The print view holds the sanitised bodies (``reading.body_fragment``, the frame's cleaning)
in a page of its own whose CSP allows no script but ours, no network but images that the
reading pane would load too (remote ones only when allowed there), and no framing.

Previews come from their own path, ``/preview/``, and only for types a browser shows without
running anything of the message: PNG, JPEG, GIF and WebP pictures and PDF, each checked by its
first bytes as well as its declared type; served ``Content-Disposition: inline`` with
``nosniff`` and the CSP ``sandbox`` directive, so a PDF opens in a sandboxed frame and never
with our origin's rights. Everything else stays a download (``message.part_view``)."""

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.http import content_disposition_header
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET

from mailcore.blobstore import load_blob
from mailcore.models import Message
from webmail import reading
from webmail.views.common import mailbox_required, owned_message
from webmail.views.message import MAX_THREAD, images_allowed

PRINT_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:{remote}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PREVIEW_CSP = ("default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
               "frame-ancestors 'self'; sandbox")
PREVIEW_TYPES = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
    "application/pdf": (b"%PDF-",),
}
MAX_PREVIEW = 20 * 1024 * 1024


def previewable(content_type: str, size: int) -> str:
    """"image", "pdf" or "" for an attachment of this declared type and size."""
    if size > MAX_PREVIEW or content_type not in PREVIEW_TYPES:
        return ""
    return "pdf" if content_type == "application/pdf" else "image"


@require_GET
@mailbox_required
def print_view(request, message_id: int):
    message = owned_message(request, message_id)
    messages = [message]
    if request.GET.get("thread") == "1" and message.thread_id:
        messages = list(Message.objects.filter(mailbox=request.mailbox,
                                               thread_id=message.thread_id)
                        .order_by()[:MAX_THREAD * 4])
        messages.sort(key=lambda m: (m.internal_date, m.pk))
        messages = messages[-MAX_THREAD:]
    allow_any = False
    items = []
    for item in messages:
        allow = images_allowed(request, item)
        allow_any = allow_any or allow
        raw = load_blob(item.blob_id)
        items.append({"message": item,
                      "body": reading.body_fragment(raw, item.structure, allow_remote=allow),
                      "attachments": reading.attachments(item.structure)})
    response = render(request, "webmail/print.html", {
        "items": items, "conversation": len(items) > 1,
        "subject": message.subject, "autoprint": request.GET.get("auto") == "1",
    })
    response["Content-Security-Policy"] = PRINT_CSP.format(
        remote=" https: http:" if allow_any else "")
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response


@xframe_options_sameorigin
@require_GET
@mailbox_required
def preview_view(request, message_id: int, section: str):
    message = owned_message(request, message_id)
    part = reading.get_part(message.structure, section)
    info = next((a for a in reading.attachments(message.structure) if a.section == section),
                None)
    if part is None or info is None:
        raise Http404("No such attachment")
    content_type = reading.safe_content_type(part)
    if not previewable(content_type, info.size):
        raise Http404("No preview for this type")
    data = reading.part_bytes(load_blob(message.blob_id), part)
    if not data.startswith(PREVIEW_TYPES[content_type]):
        raise Http404("The attachment is not what it says it is")
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(False, info.filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = PREVIEW_CSP
    response["Cache-Control"] = "private, no-store"
    return response
