"""Per-IP and total connection counting, shared by the listeners (ARCHITECTURE.md, "Bounded
work")."""

from collections import Counter

from mailcore import metrics
from mailcore.protocols.common import watchdog


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

    def acquire(self, ip: str) -> bool:
        """Count a new connection; False (and nothing counted) when over a limit, or while the
        event loop lags (every door then answers its "try again later", see ``watchdog``)."""
        if self._count >= self.total or self._by_ip[ip] >= self.per_ip or watchdog.shedding():
            self._refused.inc()
            return False
        self._count += 1
        self._by_ip[ip] += 1
        self._accepted.inc()
        self._sessions.inc()
        return True

    def release(self, ip: str) -> None:
        self._sessions.dec()
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
