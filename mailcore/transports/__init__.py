"""Transports carry queued mail out. The queue service groups recipients by
``transport.route(domain)`` and hands each group to ``transport.deliver``; the class is chosen by
``CORREIO_OUTBOUND_TRANSPORT`` (STYLE.md: "Relay goes through a small transport interface")."""

from django.conf import settings
from django.utils.module_loading import import_string

from mailcore.transports.base import Outgoing, RecipientResult, Transport

_cache: dict[str, Transport] = {}


def get_transport() -> Transport:
    path = settings.CORREIO_OUTBOUND_TRANSPORT
    transport = _cache.get(path)
    if transport is None:
        transport = import_string(path).from_settings()
        reset_transport()
        _cache[path] = transport
    return transport


def reset_transport() -> None:
    """Forget the configured transport (tests change settings between cases), closing the
    sessions it kept open."""
    for transport in _cache.values():
        transport.close()
    _cache.clear()


__all__ = ["Outgoing", "RecipientResult", "Transport", "get_transport", "reset_transport"]
