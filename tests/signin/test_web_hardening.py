"""The web's defaults: Secure cookies, HTTPS redirect and HSTS whenever the site is not only on
loopback (``check --deploy`` clean in the documented production environment), X-Forwarded-Proto
believed from trusted proxies only, ``Cache-Control: private, no-store`` on mail pages, and GETs
that change nothing (opening a message, starting a message)."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from mailcore.models import Message
from tests.conftest import PASSWORD
from webmail.models import Composition

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def deliver(db, message_bytes):
    from mailcore.services.delivery import deliver_message

    def _deliver(**kwargs) -> Message:
        result = deliver_message(message_bytes(to="demo@example.test", **kwargs),
                                 ["demo@example.test"])
        return Message.objects.get(pk=result.delivered[0].message_pk)

    return _deliver


def manage(tmp_path, *args, **env):
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("CORREIO_", "DJANGO_", "DATABASE_URL", "REDIS_URL"))}
    environ.update({"CORREIO_VAR_DIR": str(tmp_path), **env})
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_in_the_documented_production_environment(tmp_path):
    production = {"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50),
                  "ALLOWED_HOSTS": "mail.example.org", "CORREIO_TRUSTED_PROXIES": "10.0.0.2"}
    result = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **production)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    # The loopback default of `make run` is plain HTTP, and says so when asked.
    result = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", DEBUG="0",
                    SECRET_KEY=production["SECRET_KEY"])
    assert result.returncode != 0 and "security.W012" in result.stderr + result.stdout


@pytest.fixture
def https(settings, tmp_path):
    """The HTTPS settings webmail/settings.py derives for a non-loopback ALLOWED_HOSTS."""
    code = ("from django.conf import settings as s; import json; print(json.dumps({n: getattr(s, n)"
            " for n in ('SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_SSL_REDIRECT',"
            " 'SECURE_REDIRECT_EXEMPT', 'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS',"
            " 'SECURE_HSTS_PRELOAD')}))")
    result = manage(tmp_path, "shell", "-c", code, ALLOWED_HOSTS="mail.example.org")
    import json

    derived = json.loads(result.stdout.strip().splitlines()[-1])
    assert derived["SESSION_COOKIE_SECURE"] and derived["SECURE_SSL_REDIRECT"]
    for name, value in derived.items():
        setattr(settings, name, value)
    settings.ALLOWED_HOSTS = ["mail.example.org"]
    settings.CORREIO_TRUSTED_PROXIES = ["10.0.0.2"]


def test_over_https_cookies_are_secure_and_hsts_is_sent(https, mailbox):
    web = Client(HTTP_HOST="mail.example.org")
    response = web.post("/login/", {"address": mailbox.address, "password": PASSWORD},
                        secure=True)
    assert response.status_code == 302
    assert response.cookies["sessionid"]["secure"] and response.cookies["sessionid"]["httponly"]
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    plain = web.get("/login/")
    assert plain.status_code == 301 and plain["Location"] == "https://mail.example.org/login/"


def test_x_forwarded_proto_is_believed_from_trusted_proxies_only(https, db):
    stranger = Client(HTTP_HOST="mail.example.org", REMOTE_ADDR="203.0.113.9")
    assert stranger.get("/login/", HTTP_X_FORWARDED_PROTO="https").status_code == 301
    proxy = Client(HTTP_HOST="mail.example.org", REMOTE_ADDR="10.0.0.2")
    response = proxy.get("/login/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 200 and "Strict-Transport-Security" in response
    # Health checks from inside stay plain HTTP.
    assert stranger.get("/healthz").status_code == 200


def test_mail_pages_are_private_and_never_stored(mailbox, deliver):
    message = deliver(subject="secret plans")
    web = Client()
    web.force_login(mailbox.user)
    for url in (f"/m/{message.pk}/", f"/m/{message.pk}/body/", f"/m/{message.pk}/raw/",
                f"/f/{message.folder_id}/", "/settings/", "/search/?q=plans"):
        cache = web.get(url)["Cache-Control"]
        assert "private" in cache and "no-store" in cache, url


def test_gets_change_nothing(mailbox, deliver):
    message = deliver(subject="unread still")
    web = Client()
    web.force_login(mailbox.user)
    for url in (f"/m/{message.pk}/", "/compose/", f"/m/{message.pk}/reply/",
                f"/m/{message.pk}/forward/"):
        web.get(url)
    assert not Message.objects.get(pk=message.pk).seen
    assert not Composition.objects.exists()


def test_starting_messages_cannot_pile_up_compositions(mailbox, deliver):
    from webmail.composing import MAX_OPEN_COMPOSITIONS

    message = deliver(subject="with attachment")
    web = Client()
    web.force_login(mailbox.user)
    for _ in range(MAX_OPEN_COMPOSITIONS + 5):
        assert web.post(f"/m/{message.pk}/forward/").status_code == 302
    assert Composition.objects.filter(mailbox=mailbox).count() == MAX_OPEN_COMPOSITIONS


def test_get_compose_shows_a_form_that_starts_the_message_by_post(mailbox):
    web = Client()
    web.force_login(mailbox.user)
    page = web.get("/compose/?to=carol@remote.test&subject=Hi")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'method="post"' in html and "data-autostart" in html
    assert 'name="to" value="carol@remote.test"' in html
    assert not Composition.objects.exists()
    started = web.post("/compose/", {"to": "carol@remote.test", "subject": "Hi"})
    assert started.status_code == 302
    assert Composition.objects.get().to == "carol@remote.test"
