"""Security headers for every response: a Content Security Policy without inline script for the
webmail pages (the sandboxed message frame sets its own, stricter one), no framing by other
sites, and a few browser features switched off."""

from django.conf import settings
from django.utils.cache import patch_vary_headers

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
