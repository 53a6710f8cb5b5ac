"""The client address of a web request, for the sign-in throttle: ``REMOTE_ADDR``, unless that
is one of ``CORREIO_TRUSTED_PROXIES`` (addresses or networks), in which case ``X-Forwarded-For``
is read from the right, skipping trusted proxies, and the first other address is the client.
Without trusted proxies the header is ignored: anyone can write it."""

import ipaddress
from functools import lru_cache

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def trusted_networks() -> tuple[Network, ...]:
    return _networks(tuple(settings.CORREIO_TRUSTED_PROXIES))


def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]  # "[v6]:port"
    elif text.count(":") == 1:
        text = text.partition(":")[0]  # "v4:port"
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_trusted_proxy(address: str | None) -> bool:
    parsed = _parse(address or "")
    return parsed is not None and any(parsed in net for net in trusted_networks())


def client_address(request) -> str | None:
    remote = request.META.get("REMOTE_ADDR") or None
    if not is_trusted_proxy(remote):
        return remote
    hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    # Bounded: a client can send any number of hops; only the last few can be our proxies'.
    for hop in reversed(hops[-16:]):
        parsed = _parse(hop)
        if parsed is None:
            return remote  # garbage from beyond our proxies: the last trusted hop is all we know
        if not any(parsed in net for net in trusted_networks()):
            return str(parsed)
    return remote
