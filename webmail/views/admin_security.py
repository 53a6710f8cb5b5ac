"""Two-factor sign-in for staff, in the Django admin (issue 13): a staff account, with or
without a mailbox, turns on time-based codes (RFC 6238) by confirming a first code from its
authenticator app, and gets its recovery codes once; from then on the admin login asks for a
code (webmail/admin_login.py). Turning it off takes a code too. The same services as the
webmail's security page (mailcore/services/twofactor.py); served at ``/admin/two-factor/``
behind ``admin.site.admin_view`` (active staff only, CSRF-checked POSTs).

Secrets appear only in the answer to the POST that made them, never in a redirect, the session
or a message, and that answer is ``Cache-Control: no-store``."""

from django import forms
from django.contrib import admin
from django.contrib import messages as flash
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from mailcore.exceptions import AuthFailed
from mailcore.services import twofactor
from webmail.clientaddr import client_address
from webmail.views.common import error_text

TEMPLATE = "admin/two_factor.html"


class AdminCodeForm(forms.Form):
    code = forms.CharField(
        label="Code from your authenticator app", max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


def _context(request, **extra):
    user = request.user
    context = {
        **admin.site.each_context(request),
        "title": "Two-factor sign-in",
        "two_factor_on": twofactor.is_enabled_for_user(user.pk),
        "recovery_left": twofactor.recovery_codes_left(user),
        "pending_secret": twofactor.pending_secret(user),
        "code_form": AdminCodeForm(),
    }
    context.update(extra)
    return context


@sensitive_post_parameters("code")
@never_cache
def two_factor_view(request):
    user = request.user
    if request.method != "POST":
        return render(request, TEMPLATE, _context(request))
    action = request.POST.get("action")
    if action == "begin":
        try:
            secret, uri = twofactor.begin_enrolment(user)
        except ValueError:  # already on
            return redirect("admin-two-factor")
        return render(request, TEMPLATE,
                      _context(request, pending_secret=secret, otpauth_uri=uri))
    if action not in ("confirm", "disable"):
        return redirect("admin-two-factor")
    form = AdminCodeForm(request.POST)
    if form.is_valid():
        code = form.cleaned_data["code"]
        try:
            if action == "confirm":
                codes = twofactor.confirm_enrolment(user, code)
                return render(request, TEMPLATE, _context(request, recovery_codes=codes))
            twofactor.disable(user, code, client_address(request))
        except AuthFailed as exc:
            form.add_error("code", "That code is not right; try the current one."
                           if type(exc) is AuthFailed else error_text(exc))
        else:
            flash.success(request, "Two-factor sign-in is off.")
            return redirect("admin-two-factor")
    return render(request, TEMPLATE, _context(request, code_form=form), status=400)


admin_two_factor_view = admin.site.admin_view(two_factor_view)
