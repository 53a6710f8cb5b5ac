"""The authentication backend of the Django admin (and of anything else calling
``django.contrib.auth.authenticate``), and of every web session: Django's ``ModelBackend``
behind the shared failed-login throttle (mailcore/services/throttle.py), so staff accounts get no
unlimited guesses. Users are loaded as ``SessionUser`` (webmail/models.py), whose sessions
compare the password epoch, and a right password stored with an older hasher is re-hashed by
``mailcore.services.passwords``, which ends no session.

The signed-in user of each request is loaded together with their mailbox, its domain and
their webmail settings (one query rather than three: every webmail request needs all four,
``webmail.views.common.mailbox_required``)."""

import time

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.hashers import make_password
from django.core.exceptions import PermissionDenied

from mailcore.exceptions import AuthThrottled
from mailcore.services import passwords, throttle
from webmail.clientaddr import client_address
from webmail.models import SessionUser

PATH = "webmail.auth_backend.ThrottledModelBackend"


def session_users():
    return SessionUser._default_manager.select_related(
        "password_epoch", "mailbox__domain", "mailbox__webmail")


def session_user(user) -> SessionUser:
    """``user`` as web sessions see it, for ``django.contrib.auth.login``: the same row, without
    a query when its password epoch was loaded with it (``select_related``)."""
    if "password_epoch" not in user._state.fields_cache:
        return session_users().get(pk=user.pk)
    fields = [field.attname for field in SessionUser._meta.concrete_fields]
    proxy = SessionUser.from_db(user._state.db, fields, [getattr(user, f) for f in fields])
    proxy._state.fields_cache["password_epoch"] = user._state.fields_cache["password_epoch"]
    return proxy


class ThrottledModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(SessionUser.USERNAME_FIELD)
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
        user = session_users().filter(**{SessionUser.USERNAME_FIELD: username}).first()
        if user is None:
            make_password(password)  # the same time as a check: who exists stays unknown
        elif not (passwords.check_password(user, password) and self.user_can_authenticate(user)):
            user = None
        if user is None:
            throttle.failed(reservation)
        else:
            throttle.succeeded(reservation)
        return user

    def get_user(self, user_id):
        user = session_users().filter(pk=user_id).first()
        return user if user is not None and self.user_can_authenticate(user) else None
