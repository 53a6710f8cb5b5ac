"""The one config object every listener receives. Listeners never read Django settings
themselves, so tests can start them with any limits on any port."""

import ssl
from dataclasses import dataclass, field, replace
from functools import cached_property

Addr = tuple[str, int] | None


@dataclass(frozen=True)
class ListenerConfig:
    hostname: str = "mail.example.test"
    max_message_size: int = 25 * 1024 * 1024
    tls_cert: str | None = None
    tls_key: str | None = None
    smtp_addr: Addr = None
    submission_addr: Addr = None
    submissions_addr: Addr = None
    imap_addr: Addr = None
    imaps_addr: Addr = None
    pop3_addr: Addr = None
    pop3s_addr: Addr = None
    managesieve_addr: Addr = None
    # Connections: in total and from one IP, per listener.
    max_connections: int = 1000
    max_connections_per_ip: int = 50
    # Seconds a client has, from connecting, to log in (RFC 3501 §5.4 autologout; one minute
    # before login is usual); commands before login do not extend it.
    preauth_timeout: float = 60.0
    # TLS handshakes in progress on each implicit-TLS listener (993, 995, 465), in total and
    # from one IP, and the seconds a client has to finish its handshake
    # (protocols/common/implicit_tls.py; issue 12).
    max_tls_handshakes: int = 200
    max_tls_handshakes_per_ip: int = 10
    tls_handshake_timeout: float = 10.0
    # Seconds of event-loop lag past which the mail process logs a warning, and the lag that
    # means the loop is stalled, when new connections are shed (protocols/common/watchdog.py;
    # issue 12).
    loop_lag_threshold: float = 0.1
    loop_stall: float = 2.0
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def from_settings(cls, **overrides) -> "ListenerConfig":
        from pathlib import Path

        from django.conf import settings

        cert, key = settings.CORREIO_TLS_CERT, settings.CORREIO_TLS_KEY
        has_tls = bool(cert and key and Path(cert).exists() and Path(key).exists())
        config = cls(
            hostname=settings.CORREIO_HOSTNAME,
            max_message_size=settings.CORREIO_MAX_MESSAGE_SIZE,
            tls_cert=cert if has_tls else None,
            tls_key=key if has_tls else None,
            smtp_addr=settings.CORREIO_SMTP_ADDR,
            submission_addr=settings.CORREIO_SUBMISSION_ADDR,
            submissions_addr=settings.CORREIO_SUBMISSIONS_ADDR,
            imap_addr=settings.CORREIO_IMAP_ADDR,
            imaps_addr=settings.CORREIO_IMAPS_ADDR,
            pop3_addr=settings.CORREIO_POP3_ADDR,
            pop3s_addr=settings.CORREIO_POP3S_ADDR,
            managesieve_addr=settings.CORREIO_MANAGESIEVE_ADDR,
        )
        return replace(config, **overrides)

    @property
    def has_tls(self) -> bool:
        return bool(self.tls_cert and self.tls_key)

    @cached_property
    def server_tls_context(self) -> ssl.SSLContext | None:
        """A server-side context (TLS 1.2+) for STARTTLS and the implicit-TLS ports."""
        if not self.has_tls:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.tls_cert, self.tls_key)
        return context
