"""The Sender Rewriting Scheme for mail an alias forwards outside.

A message from ``alice@remote.test`` to our alias ``team@example.test`` that forwards to
``bob@elsewhere.test`` leaves here from our address, so the next hop's SPF check (RFC 7208)
sees our domain sending from our server and passes; its bounces come back to us and are
returned to Alice. The rewritten sender is
``SRS0=<hash>=<time>=remote.test=alice@example.test``: ``time`` is the day number (base 32, two
characters, 1,024-day cycle), ``hash`` an HMAC-SHA256 of time, domain and local part under
``SECRET_KEY``, so nobody can make us relay mail by forging such an address, and an address
older than ``MAX_AGE_DAYS`` is refused."""

import base64
import hashlib
import hmac
import time

PREFIX = "SRS0="
MAX_AGE_DAYS = 21
_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_HASH_CHARS = 8


def _day(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // 86400) % 1024


def _stamp(day: int) -> str:
    return _ALPHABET[day >> 5] + _ALPHABET[day & 31]


def _hash(secret: str, stamp: str, domain: str, local: str) -> str:
    digest = hmac.new(secret.encode(), f"{stamp}={domain}={local}".lower().encode(),
                      hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower()[:_HASH_CHARS]


def forward(sender: str, our_domain: str, secret: str, now: float | None = None) -> str:
    """The SRS address standing for ``sender`` at ``our_domain`` (``sender`` unchanged when
    null or already ours)."""
    local, _, domain = sender.rpartition("@")
    if not local or not domain or domain.lower() == our_domain.lower():
        return sender
    stamp = _stamp(_day(now))
    return f"{PREFIX}{_hash(secret, stamp, domain, local)}={stamp}={domain}={local}@{our_domain}"


def is_srs(address: str) -> bool:
    return address[: len(PREFIX)].upper() == PREFIX


def reverse(address: str, secret: str, now: float | None = None) -> str | None:
    """The original sender behind an SRS address of ours, or None when it is not one of ours:
    a bad hash, an expired stamp, or malformed."""
    local = address.rpartition("@")[0]
    if not is_srs(local):
        return None
    parts = local[len(PREFIX):].split("=", 3)
    if len(parts) != 4:
        return None
    given, stamp, domain, original = parts
    if len(stamp) != 2 or any(c not in _ALPHABET for c in stamp.lower()) or not domain:
        return None
    if not original:
        return None
    expected = _hash(secret, stamp.lower(), domain, original)
    if not hmac.compare_digest(given.lower(), expected):
        return None
    day = (_ALPHABET.index(stamp[0].lower()) << 5) | _ALPHABET.index(stamp[1].lower())
    if (_day(now) - day) % 1024 > MAX_AGE_DAYS:
        return None
    return f"{original}@{domain}"
