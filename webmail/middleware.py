"""Security headers for every response: a Content Security Policy without inline script for the
webmail pages (the sandboxed message frame sets its own, stricter one), no framing by other
sites, a few browser features switched off, and ``Cache-Control: private, no-store`` on pages that
show mail or account data; and the request scheme behind a trusted reverse proxy."""

from django.conf import settings
from django.utils.cache import patch_cache_control, patch_vary_headers

from webmail.clientaddr import is_trusted_proxy

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
