"""The settings page: display name, remote images, conversation view, theme, trusted senders,
allowed and blocked senders (issue 14),
writing (signature, default identity, undo-send window), and the password change (checked through the shared credential check and its throttle)."""

from django.contrib import messages as flash
from django.contrib.auth import update_session_auth_hash
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters

from mailcore.exceptions import AuthFailed
from mailcore.models import SenderRule
from mailcore.services.profile import change_password, set_display_name
from mailcore.services.sender_rules import add_sender_rule, remove_sender_rule
from webmail.clientaddr import client_address
from webmail.composing import identities
from webmail.forms import PasswordForm, PreferencesForm, SignatureForm
from webmail.models import UNDO_CHOICES, TrustedSender
from webmail.views.common import error_text, folder_items, mailbox_required, user_settings


@sensitive_post_parameters("current", "new", "confirm")
@mailbox_required
def settings_view(request):
    mailbox = request.mailbox
    prefs = user_settings(mailbox)
    initial = {
        "display_name": mailbox.display_name,
        "load_remote_images": prefs.load_remote_images,
        "conversation_view": prefs.conversation_view,
        "theme": prefs.theme,
    }
    form = PreferencesForm(initial=initial)
    compose_options = {"identities": identities(mailbox), "undo_choices": UNDO_CHOICES}
    compose_initial = {"signature": prefs.signature,
                       "default_identity": prefs.default_identity or mailbox.address,
                       "undo_seconds": prefs.undo_seconds}
    compose_form = SignatureForm(initial=compose_initial, **compose_options)
    password_form = PasswordForm()
    rule_error = ""
    status = 200
    if request.method == "POST":
        which = request.POST.get("form")
        if which == "preferences":
            form = PreferencesForm(request.POST, initial=initial)
            if form.is_valid():
                set_display_name(mailbox, form.cleaned_data["display_name"])
                prefs.load_remote_images = form.cleaned_data["load_remote_images"]
                prefs.conversation_view = form.cleaned_data["conversation_view"]
                prefs.theme = form.cleaned_data["theme"]
                prefs.save()
                flash.success(request, "Settings saved.")
                return redirect("webmail:settings")
            status = 400
        elif which == "compose":
            compose_form = SignatureForm(request.POST, initial=compose_initial, **compose_options)
            if compose_form.is_valid():
                data = compose_form.cleaned_data
                prefs.signature = data["signature"].replace("\r\n", "\n")
                prefs.default_identity = data["default_identity"]
                prefs.undo_seconds = data["undo_seconds"]
                prefs.save()
                flash.success(request, "Settings saved.")
                return redirect("webmail:settings")
            status = 400
        elif which == "password":
            password_form = PasswordForm(request.POST)
            if password_form.is_valid():
                try:
                    change_password(
                        mailbox, password_form.cleaned_data["current"],
                        password_form.cleaned_data["new"], client_address(request),
                    )
                except AuthFailed as exc:
                    # The address is not in question here: only a plain failure is the
                    # current password; a throttle keeps its own words.
                    password_form.add_error("current", error_text(exc) if type(exc) is not AuthFailed
                                            else "Your current password is wrong.")
                except ValidationError as exc:
                    password_form.add_error("new", exc)
                else:
                    update_session_auth_hash(request, mailbox.user)
                    flash.success(request, "Password changed.")
                    return redirect("webmail:settings")
            status = 400
        elif which == "sender-rule":
            try:
                add_sender_rule(mailbox, request.POST.get("pattern", ""),
                                request.POST.get("kind", ""))
            except ValidationError as exc:
                rule_error = " ".join(exc.messages)
                status = 400
            else:
                flash.success(request, "Sender list saved.")
                return redirect("webmail:settings")
        elif which == "sender-rule-remove":
            rule = request.POST.get("rule", "")
            if rule.isdigit():
                remove_sender_rule(mailbox, int(rule))
            return redirect("webmail:settings")
        elif which == "untrust":
            TrustedSender.objects.filter(
                mailbox=mailbox, pk=request.POST.get("sender", "0") or 0
            ).delete()
            return redirect("webmail:settings")
    context = {
        "mailbox": mailbox,
        "prefs": prefs,
        "folders": folder_items(mailbox),
        "form": form,
        "password_form": password_form,
        "compose_form": compose_form,
        "trusted": TrustedSender.objects.filter(mailbox=mailbox).order_by("address"),
        "sender_rules": SenderRule.objects.filter(mailbox=mailbox).order_by("kind", "pattern"),
        "rule_error": rule_error,
        "rule_pattern": request.POST.get("pattern", "") if rule_error else "",
    }
    return render(request, "webmail/settings.html", context, status=status)
