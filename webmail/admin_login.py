"""The Django admin's login form with a second factor: the password goes through the throttled
backend (webmail/auth_backend.py) as before, and a staff account with two-factor sign-in on must
also give a code (mailcore/services/twofactor.py), checked through the same throttle."""

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from mailcore.exceptions import AuthFailed
from mailcore.services import twofactor
from webmail.clientaddr import client_address


class TwoFactorAdminAuthenticationForm(AdminAuthenticationForm):
    code = forms.CharField(
        label="Two-factor code (if on)", required=False, max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code"}),
    )

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if not twofactor.is_enabled_for_user(user.pk):
            return
        code = self.cleaned_data.get("code") or ""
        if not code:
            raise ValidationError("Enter the code from your authenticator app.", code="code")
        try:
            twofactor.check_second_factor(user, code, client_address(self.request))
        except AuthFailed:
            raise ValidationError("That code is not right.", code="code") from None
