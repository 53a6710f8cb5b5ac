"""Per-IP and total connection counting, shared by the listeners (ARCHITECTURE.md, "Bounded
work"), and the bound on TLS handshakes in progress on the implicit-TLS ports (issue 12)."""

from collections import Counter
from enum import Enum

from mailcore import metrics
from mailcore.protocols.common import watchdog


class Refusal(Enum):
    """Why a new connection is not served; each door words its temporary refusal for both."""

    # Over the listener's connection limit, in total or for the client's address.
    TOO_MANY = "too many connections"
    # The event loop is stalled (see ``watchdog``): a temporary lack of resources, not the
    # client's doing.
    BUSY = "busy"


class ConnectionLimiter:
    def __init__(self, total: int, per_ip: int, listener: str = "other"):
        self.total = total
        self.per_ip = per_ip
        self._by_ip: Counter[str] = Counter()
        self._count = 0
        # Every accepted connection passes here: the sessions gauge of ``listener``.
        self._sessions = metrics.SESSIONS.labels(listener)
        self._accepted = metrics.CONNECTIONS.labels(listener, "accepted")
        self._refused = metrics.CONNECTIONS.labels(listener, "refused")
        self._shed = metrics.CONNECTIONS.labels(listener, "shed")

    def admit(self, ip: str) -> Refusal | None:
        """Count a new connection and return None; or return why it is refused (nothing
        counted): over a limit, or while the event loop is stalled (``watchdog``)."""
        if self._count >= self.total or self._by_ip[ip] >= self.per_ip:
            self._refused.inc()
            return Refusal.TOO_MANY
        if watchdog.shedding():
            self._shed.inc()
            return Refusal.BUSY
        self._count += 1
        self._by_ip[ip] += 1
        self._accepted.inc()
        self._sessions.inc()
        return None

    def release(self, ip: str) -> None:
        self._sessions.dec()
        self._count -= 1
        self._by_ip[ip] -= 1
        if self._by_ip[ip] <= 0:
            del self._by_ip[ip]

    @property
    def count(self) -> int:
        return self._count


class HandshakeLimiter:
    """TLS handshakes in progress on one implicit-TLS listener, per client address and in
    total. A handshake holds a TLS object and its buffers and costs the loop work for every
    record; a client that opens connections and never finishes its ClientHello would otherwise
    hold as many as the connection limits allow (50 per address, 1,000 in all) for the whole
    handshake timeout. Over a bound the connection is closed at once, before any TLS work."""

    def __init__(self, total: int, per_ip: int, listener: str = "other"):
        self.total = total
        self.per_ip = per_ip
        self._by_ip: Counter[str] = Counter()
        self._count = 0
        self._refused = metrics.CONNECTIONS.labels(listener, "handshake_refused")

    def acquire(self, ip: str) -> bool:
        if self._count >= self.total or self._by_ip[ip] >= self.per_ip:
            self._refused.inc()
            return False
        self._count += 1
        self._by_ip[ip] += 1
        return True

    def release(self, ip: str) -> None:
        self._count -= 1
        self._by_ip[ip] -= 1
        if self._by_ip[ip] <= 0:
            del self._by_ip[ip]

    @property
    def count(self) -> int:
        return self._count


class PerKeyLimiter:
    """At most ``limit`` things in progress per key (a client address): DATA transactions."""

    def __init__(self, limit: int):
        self.limit = limit
        self._by_key: Counter[str] = Counter()

    def acquire(self, key: str) -> bool:
        if self._by_key[key] >= self.limit:
            return False
        self._by_key[key] += 1
        return True

    def release(self, key: str) -> None:
        self._by_key[key] -= 1
        if self._by_key[key] <= 0:
            del self._by_key[key]

    def __getitem__(self, key: str) -> int:
        return self._by_key.get(key, 0)


def is_loopback(ip: str | None) -> bool:
    """Plaintext passwords are accepted without TLS only from loopback (ARCHITECTURE.md)."""
    if not ip:
        return False
    return ip.startswith("127.") or ip in ("::1", "localhost") or ip.startswith("::ffff:127.")
