"""Settings of issue 17, each its own small form posting here (the settings page includes
their partials): browser notifications of new Inbox mail (opt-in; the browser's own permission
is asked by ``static/webmail/notify.js`` when the box is ticked) and writing in rich text
(plain text stays the default)."""

from django.contrib import messages as flash
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from webmail.views.common import mailbox_required, user_settings


@require_POST
@mailbox_required
def notifications_view(request):
    prefs = user_settings(request.mailbox)
    prefs.notify_new_mail = request.POST.get("notify_new_mail") == "on"
    prefs.save()
    flash.success(request, "Notifications " + ("on." if prefs.notify_new_mail else "off."))
    return redirect("webmail:settings")


@require_POST
@mailbox_required
def rich_text_view(request):
    prefs = user_settings(request.mailbox)
    prefs.compose_html = request.POST.get("compose_html") == "rich"
    prefs.save()
    flash.success(request, "New messages are written in "
                  + ("rich text." if prefs.compose_html else "plain text."))
    return redirect("webmail:settings")
