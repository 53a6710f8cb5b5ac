"""Settings of issue 17, each its own small form posting here (the settings page includes
their partials): browser notifications of new Inbox mail (opt-in; the browser's own permission
is asked by ``static/webmail/notify.js`` when the box is ticked) and writing in rich text
(plain text stays the default), and each From identity's name and signatures."""

from django.contrib import messages as flash
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from webmail.identities import save_identity
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


@require_POST
@mailbox_required
def identity_view(request):
    address = request.POST.get("address", "")
    try:
        save_identity(request.mailbox, address,
                      display_name=request.POST.get("display_name", "")[:200],
                      signature=request.POST.get("signature", "")[:4000],
                      signature_html=request.POST.get("signature_html", "")[:20000])
    except ValidationError as exc:
        flash.error(request, f"{address}: {' '.join(exc.messages)}")
    else:
        flash.success(request, f"Saved how you send as {address}.")
    return redirect("webmail:settings")


@require_POST
@mailbox_required
def conversations_view(request):
    prefs = user_settings(request.mailbox)
    prefs.conversation_list = request.POST.get("conversation_list") == "on"
    prefs.save()
    flash.success(request, "The message list shows "
                  + ("conversations." if prefs.conversation_list else "single messages."))
    return redirect("webmail:settings")
