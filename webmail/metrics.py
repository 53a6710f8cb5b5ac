"""Web metrics: request latency by route, web and admin logins (``mailcore/metrics.py``), and the
``/metrics`` view.

``/metrics`` answers loopback clients only, unless ``CORREIO_METRICS_TOKEN`` is set: then it
wants ``Authorization: Bearer <token>`` from everyone. A request carrying a forwarding header
came through a proxy, whose loopback address proves nothing about the client, so it needs the
token too."""

import ipaddress
import time

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.cache import never_cache

from mailcore import metrics
from mailcore.metrics_http import authorized, render

# Sign-in forms: a POST that redirects signed the user in; anything else did not.
LOGIN_ROUTES = {"webmail:login": "webmail", "admin:login": "admin"}
FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def request_metrics(get_response):
    def middleware(request):
        start = time.perf_counter()
        response = get_response(request)
        match = getattr(request, "resolver_match", None)
        route = match.view_name if match is not None else "unmatched"
        metrics.WEB_SECONDS.labels(route, request.method if request.method in (
            "GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS") else "other",
            f"{response.status_code // 100}xx").observe(time.perf_counter() - start)
        door = LOGIN_ROUTES.get(route)
        if door and request.method == "POST":
            result = "ok" if response.status_code in (302, 303) else "failed"
            metrics.LOGINS.labels(door, result).inc()
        return response

    return middleware


def _from_loopback(request) -> bool:
    if any(request.META.get(name) for name in FORWARDING_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


@never_cache
def metrics_view(request):
    token = settings.CORREIO_METRICS_TOKEN
    if token:
        if not authorized(request.META.get("HTTP_AUTHORIZATION"), token):
            response = HttpResponse("bearer token required\n", status=401,
                                    content_type="text/plain")
            response["WWW-Authenticate"] = "Bearer"
            return response
    elif not _from_loopback(request):
        return HttpResponse("metrics are served to loopback only\n", status=403,
                            content_type="text/plain")
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    return HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)
