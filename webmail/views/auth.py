"""Login and logout. The password is checked by the one credential check every door uses
(``mailcore.services.credentials.authenticate``), so the web shares the failed-login throttle with
SMTP AUTH, IMAP, POP3 and the admin; the client address comes from ``webmail.clientaddr``
(``X-Forwarded-For`` only from ``CORREIO_TRUSTED_PROXIES``). A user with two-factor on is signed in
only after a second step, a code (mailcore/services/twofactor.py)."""

import time
from urllib.parse import urlencode

from django.contrib.auth import login, logout
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from mailcore.db.relaxed import relaxed_atomic
from mailcore.exceptions import AuthFailed
from mailcore.services import twofactor
from mailcore.services.credentials import WEB, authenticate
from webmail.auth_backend import PATH as BACKEND
from webmail.auth_backend import session_user, session_users
from webmail.clientaddr import client_address
from webmail.forms import CodeForm, LoginForm
from webmail.views.common import error_text

# The password step is good for this long before the code must follow.
PENDING = "correio_2fa_pending"
PENDING_SECONDS = 300


def _next_url(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("webmail:index")


def _sign_in(request, user) -> None:
    # ``last_login`` is bookkeeping: its commit need not wait for the disk (mailcore/db/relaxed.py).
    with relaxed_atomic():
        login(request, user, backend=BACKEND)


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
                client_address(request), door=WEB,
            )
        except AuthFailed as exc:
            form.add_error(None, error_text(exc))
            status = 403
        else:
            if twofactor.is_enabled(mailbox):
                # Not signed in yet: the session only remembers whose password was right.
                request.session.cycle_key()
                request.session[PENDING] = {"user": mailbox.user_id, "since": time.time()}
                query = urlencode({"next": _next_url(request)})
                return redirect(f"{reverse('webmail:login-code')}?{query}")
            _sign_in(request, session_user(mailbox.user))
            return redirect(_next_url(request))
    return render(
        request, "webmail/login.html", {"form": form, "next": _next_url(request)}, status=status
    )


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
def code_view(request):
    """The second step for a user with two-factor on: a code, through the throttle."""
    pending = request.session.get(PENDING) or {}
    user = None
    if time.time() - pending.get("since", 0) < PENDING_SECONDS:
        user = session_users().filter(pk=pending.get("user"), is_active=True).first()
    if user is None:
        request.session.pop(PENDING, None)
        return redirect("webmail:login")
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            twofactor.check_second_factor(user, form.cleaned_data["code"], client_address(request))
        except AuthFailed as exc:
            form.add_error("code", error_text(exc) if type(exc) is not AuthFailed
                           else "That code is not right.")
            status = 403
        else:
            request.session.pop(PENDING, None)
            _sign_in(request, user)
            return redirect(_next_url(request))
    return render(request, "webmail/login_code.html",
                  {"form": form, "next": _next_url(request)}, status=status)


@require_POST
def logout_view(request):
    logout(request)
    return redirect("webmail:login")
