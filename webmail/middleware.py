"""Security headers for every response: a Content Security Policy without inline script for the
webmail pages (the sandboxed message frame sets its own, stricter one), no framing by other
sites, a few browser features switched off, and ``Cache-Control: private, no-store`` on pages that
show mail or account data; the request scheme behind a trusted reverse proxy; and the browser's
time zone, for showing times in it."""

import re
import zoneinfo

from django.conf import settings
from django.utils import timezone
from django.utils.cache import patch_cache_control, patch_vary_headers

from webmail.clientaddr import is_trusted_proxy

# The ``tz`` cookie the webmail's script sets from the browser (an IANA name such as
# "Europe/Lisbon"); anything else is ignored and times stay in the server's zone.
TZ_COOKIE = "tz"
_TZ_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]{0,30}(?:/[A-Za-z0-9_+\-]{1,30}){0,2}$")

APP_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# The admin's own templates use inline styles; it still may not be framed.
ADMIN_CSP = "frame-ancestors 'none'; object-src 'none'; base-uri 'self'"


def security_headers(get_response):
    admin_prefix = "/admin/"

    def middleware(request):
        response = get_response(request)
        if "Content-Security-Policy" not in response:
            admin = request.path.startswith(admin_prefix)
            response["Content-Security-Policy"] = ADMIN_CSP if admin else APP_CSP
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"
        )
        response.headers.setdefault("Referrer-Policy", settings.SECURE_REFERRER_POLICY)
        # A page and its htmx fragment share a URL; caches must keep them apart.
        patch_vary_headers(response, ("HX-Request",))
        if not request.path.startswith(static_prefix) and request.path != "/healthz":
            # Mail and account pages: never kept by a shared cache, nor on disk by the browser.
            patch_cache_control(response, private=True, no_store=True)
        return response

    static_prefix = "/" + settings.STATIC_URL.lstrip("/")
    return middleware


def trusted_proxy_scheme(get_response):
    """Behind a reverse proxy listed in ``CORREIO_TRUSTED_PROXIES`` that terminates TLS, the
    request was HTTPS when the proxy says ``X-Forwarded-Proto: https``; from anyone else the
    header is ignored (Django's SECURE_PROXY_SSL_HEADER would believe every client)."""

    def middleware(request):
        if request.META.get("HTTP_X_FORWARDED_PROTO", "").strip().lower() == "https" and (
            is_trusted_proxy(request.META.get("REMOTE_ADDR"))
        ):
            request.META["wsgi.url_scheme"] = "https"
        return get_response(request)

    return middleware


def browser_time_zone(get_response):
    """Activate the time zone the browser reported for the rest of the request."""

    def middleware(request):
        zone = None
        name = request.COOKIES.get(TZ_COOKIE, "")
        if name and _TZ_NAME.match(name):
            try:
                zone = zoneinfo.ZoneInfo(name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
                zone = None
        if zone is None:
            return get_response(request)
        with timezone.override(zone):
            return get_response(request)

    return middleware
