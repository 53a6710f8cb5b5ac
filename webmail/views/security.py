"""The security page: app passwords for mail clients (created and shown once, listed with when
and from where each was last used, revoked one by one) and two-factor sign-in (turned on by
confirming a first code, which shows the recovery codes once; turned off with a code).

Secrets appear only in the answer to the POST that made them, never in a redirect, the session or
a flash message, and that answer is ``Cache-Control: no-store``."""

from django.contrib import messages as flash
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache

from mailcore.exceptions import AuthFailed
from mailcore.services import apppasswords, twofactor
from webmail.clientaddr import client_address
from webmail.forms import AppPasswordForm, CodeForm
from webmail.views.common import error_text, folder_items, mailbox_required


def _context(request, **extra):
    mailbox = request.mailbox
    user = mailbox.user
    context = {
        "mailbox": mailbox,
        "folders": folder_items(mailbox),
        "app_passwords": apppasswords.list_app_passwords(mailbox),
        "app_form": AppPasswordForm(),
        "code_form": CodeForm(),
        "two_factor_on": twofactor.is_enabled(mailbox),
        "recovery_left": twofactor.recovery_codes_left(user),
        "pending_secret": twofactor.pending_secret(user),
    }
    context.update(extra)
    return context


@never_cache
@mailbox_required
def security_view(request):
    mailbox = request.mailbox
    user = mailbox.user
    if request.method != "POST":
        return render(request, "webmail/security.html", _context(request))
    action = request.POST.get("action")
    status, extra = 200, {}
    if action == "create-app-password":
        form = AppPasswordForm(request.POST)
        if form.is_valid():
            try:
                row, secret = apppasswords.create_app_password(mailbox, form.cleaned_data["label"])
            except ValidationError as exc:
                form.add_error("label", exc)
            else:
                extra = {"new_app_password": secret, "new_app_label": row.label}
        if form.errors:
            status, extra = 400, {"app_form": form}
    elif action == "revoke-app-password":
        raw = request.POST.get("app_password", "")
        if raw.isdigit() and apppasswords.revoke_app_password(mailbox, int(raw)):
            flash.success(request, "App password revoked.")
        return redirect("webmail:security")
    elif action == "two-factor-begin":
        try:
            secret, uri = twofactor.begin_enrolment(user)
        except ValueError:
            return redirect("webmail:security")
        extra = {"pending_secret": secret, "otpauth_uri": uri}
    elif action in ("two-factor-confirm", "two-factor-disable"):
        form = CodeForm(request.POST)
        if form.is_valid():
            try:
                if action == "two-factor-confirm":
                    extra = {"recovery_codes": twofactor.confirm_enrolment(
                        user, form.cleaned_data["code"])}
                else:
                    twofactor.disable(user, form.cleaned_data["code"], client_address(request))
                    flash.success(request, "Two-factor sign-in is off.")
                    return redirect("webmail:security")
            except AuthFailed as exc:
                form.add_error("code", error_text(exc) if type(exc) is not AuthFailed
                               else "That code is not right; try the current one.")
        if form.errors:
            status, extra = 400, {"code_form": form}
    else:
        return redirect("webmail:security")
    return render(request, "webmail/security.html", _context(request, **extra), status=status)
