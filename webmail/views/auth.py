"""Login and logout. The password is checked by the one credential check every door uses
(``mailcore.services.credentials.authenticate``), so the web shares the failed-login throttle with
SMTP AUTH, IMAP, POP3 and the admin; the client address comes from ``webmail.clientaddr``
(``X-Forwarded-For`` only from ``CORREIO_TRUSTED_PROXIES``)."""

from django.contrib.auth import login, logout
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from mailcore.exceptions import AuthFailed
from mailcore.services.credentials import authenticate
from webmail.auth_backend import PATH as BACKEND
from webmail.clientaddr import client_address
from webmail.forms import LoginForm
from webmail.views.common import error_text


def _next_url(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("webmail:index")


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
def login_view(request):
    form = LoginForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            mailbox = authenticate(
                form.cleaned_data["address"], form.cleaned_data["password"],
                client_address(request), remember=False,
            )
        except AuthFailed as exc:
            form.add_error(None, error_text(exc))
            status = 403
        else:
            login(request, mailbox.user, backend=BACKEND)
            return redirect(_next_url(request))
    return render(
        request, "webmail/login.html", {"form": form, "next": _next_url(request)}, status=status
    )


@require_POST
def logout_view(request):
    logout(request)
    return redirect("webmail:login")
