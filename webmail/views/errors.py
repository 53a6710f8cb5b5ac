"""The 400 page, and one case of it worth words of its own: a compose form whose fields are
over Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (a huge picture pasted into rich text as a
``data:`` URL). Django refuses such a request before any view runs (the CSRF check reads the
body), so the compose view cannot answer it; this handler does, with a message in the form's
status line and nothing swapped, so the form in the browser keeps everything typed."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve
from django_htmx.http import reswap, retarget

COMPOSE_URLS = {"webmail:compose", "webmail:compose-autosave"}


def too_big_text() -> str:
    limit = filesizeformat(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    return (f"Not saved: the text and pictures in it are over {limit}. A picture in the text "
            "is too large: remove it and attach it as a file instead. Nothing else changed.")


def bad_request(request, exception=None):
    if isinstance(exception, RequestDataTooBig):
        try:
            name = resolve(request.path_info).view_name
        except Resolver404:
            name = ""
        scripted = request.htmx or request.headers.get("X-Requested-With") == "XMLHttpRequest"
        if name in COMPOSE_URLS and not scripted:
            return render(request, "400.html", {"reason": too_big_text()}, status=413)
        if name in COMPOSE_URLS:
            html = render_to_string("webmail/compose.html#save-status",
                                    {"status_text": too_big_text()}, request=request)
            response = HttpResponse(html, status=413)
            # htmx (Send, Save): show it in the status line, leave the form as it is.
            return reswap(retarget(response, "#save-status"), "outerHTML")
    return render(request, "400.html", status=400)
