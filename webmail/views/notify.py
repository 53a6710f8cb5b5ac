"""Settings for notifications (issue 17): browser notifications of new Inbox mail are opt-in.
The browser's own permission is asked by ``static/webmail/notify.js`` when the box is ticked;
this view only keeps the choice."""

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
