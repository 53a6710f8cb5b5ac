"""The authentication backend of the Django admin (and of anything else calling
``django.contrib.auth.authenticate``): Django's ``ModelBackend`` behind the shared failed-login
throttle (mailcore/services/throttle.py), so staff accounts get no unlimited guesses.

It also loads the signed-in user of each request together with their mailbox, its domain and
their webmail settings (one query rather than three: every webmail request needs all four,
``webmail.views.common.mailbox_required``)."""

import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from mailcore.exceptions import AuthThrottled
from mailcore.services import throttle
from webmail.clientaddr import client_address

PATH = "webmail.auth_backend.ThrottledModelBackend"


class ThrottledModelBackend(ModelBackend):
    def get_user(self, user_id):
        model = get_user_model()
        try:
            user = model._default_manager.select_related(
                "mailbox__domain", "mailbox__webmail").get(pk=user_id)
        except model.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        client = client_address(request) if request is not None else None
        try:
            reservation = throttle.reserve(
                username, client, max_wait=settings.CORREIO_AUTH_WEB_MAX_WAIT_MS / 1000
            )
        except AuthThrottled:
            # Stops the other backends too; the login form shows its usual error.
            raise PermissionDenied("too many failed logins") from None
        if reservation.wait:
            time.sleep(reservation.wait)
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            throttle.failed(reservation)
        else:
            throttle.succeeded(reservation)
        return user
