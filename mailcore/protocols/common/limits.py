"""Per-IP and total connection counting, shared by the listeners (ARCHITECTURE.md, "Bounded
work")."""

from collections import Counter

from mailcore import metrics


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
        """Count a new connection; False (and nothing counted) when over a limit."""
        if self._count >= self.total or self._by_ip[ip] >= self.per_ip:
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


def is_loopback(ip: str | None) -> bool:
    """Plaintext passwords are accepted without TLS only from loopback (ARCHITECTURE.md)."""
    if not ip:
        return False
    return ip.startswith("127.") or ip in ("::1", "localhost") or ip.startswith("::ffff:127.")
