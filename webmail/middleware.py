"""Security headers for every response: a Content Security Policy without inline script for the
webmail pages (the sandboxed message frame sets its own, stricter one), no framing by other
sites, and a few browser features switched off. And the browser's time zone, for showing times
in it."""

import re
import zoneinfo

from django.conf import settings
from django.utils import timezone
from django.utils.cache import patch_vary_headers

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
        return response

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
