"""Strict readers for settings taken from the environment (12-factor).

Every reader has a working default and fails loudly on a value it cannot understand, so a typo in
a deployment stops the process at start instead of silently running on a default.
"""

import os
import re

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false)")


def env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum}")
    return value


def env_size(name: str, default: int) -> int:
    """A byte size such as ``25MiB``, ``512k`` or ``1048576``."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    match = _SIZE.match(raw)
    if not match:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a size (e.g. 25MiB)")
    unit = (match.group(2) or "").lower()[:1]
    return int(match.group(1)) * _UNITS[unit]


def env_secret(name: str, default: str) -> str:
    """A secret from ``NAME`` or from the file named by ``NAME_FILE`` (Docker secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} cannot be read: {exc}") from None
    return os.environ.get(name, default)


def env_addr(name: str, default: str) -> tuple[str, int] | None:
    """A listener address ``host:port``; an empty value turns the listener off."""
    raw = os.environ.get(name, default).strip()
    if not raw:
        return None
    host, sep, port = raw.rpartition(":")
    if not sep or not port.isdigit():
        raise ImproperlyConfigured(f"{name}={raw!r} is not host:port")
    host = host.strip("[]") or "0.0.0.0"
    number = int(port)
    if not 0 <= number <= 65535:
        raise ImproperlyConfigured(f"{name}={raw!r} has a port out of range")
    return host, number


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int_list(name: str, default: str, minimum: int = 0) -> list[int]:
    """Comma-separated integers such as ``300,900,3600``."""
    raw = os.environ.get(name, default)
    values = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        if not item.isdigit() or int(item) < minimum:
            raise ImproperlyConfigured(f"{name}={raw!r}: {item!r} is not an integer >= {minimum}")
        values.append(int(item))
    if not values:
        raise ImproperlyConfigured(f"{name}={raw!r} needs at least one value")
    return values


def env_host_map(name: str, default: str = "") -> dict[str, list[tuple[str, int]]]:
    """``domain=host:port host:port;domain2=host:port``: a list of addresses per domain."""
    raw = os.environ.get(name, default)
    result: dict[str, list[tuple[str, int]]] = {}
    for entry in raw.split(";"):
        if not entry.strip():
            continue
        domain, sep, hosts = entry.partition("=")
        domain = domain.strip().rstrip(".").lower()
        if not sep or not domain:
            raise ImproperlyConfigured(f"{name}={raw!r}: {entry!r} is not domain=host:port")
        addresses = []
        for item in hosts.replace(",", " ").split():
            host, colon, port = item.rpartition(":")
            if not colon or not host or not port.isdigit() or not 0 < int(port) <= 65535:
                raise ImproperlyConfigured(f"{name}={raw!r}: {item!r} is not host:port")
            addresses.append((host.strip("[]"), int(port)))
        if not addresses:
            raise ImproperlyConfigured(f"{name}={raw!r}: {domain} has no host:port")
        result[domain] = addresses
    return result
