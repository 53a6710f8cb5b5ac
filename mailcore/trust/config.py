"""The settings of inbound trust, read once per message into one frozen object."""

from dataclasses import dataclass


@dataclass(frozen=True)
class TrustConfig:
    enabled: bool = True
    nameservers: tuple[str, ...] = ()
    # Seconds all DNS look-ups of one message may take together; past it, 451 4.4.3.
    dns_timeout: float = 5.0
    # ARC sealers (d= of ARC-Seal) whose passing chain overrides a DMARC failure (RFC 8617 §7.2).
    arc_sealers: frozenset[str] = frozenset()
    # RFC 7208 §8.4: refuse SPF "fail" when no DMARC policy covers the message (default: mark).
    spf_fail_reject: bool = False
    # rspamd's normal worker ("" = no spam engine) and how long to wait for its verdict.
    rspamd_url: str = ""
    rspamd_timeout: float = 5.0

    @classmethod
    def from_settings(cls) -> "TrustConfig":
        from django.conf import settings

        return cls(
            enabled=settings.CORREIO_SENDER_AUTH,
            nameservers=tuple(settings.CORREIO_DNS_NAMESERVERS),
            dns_timeout=float(settings.CORREIO_DNS_TIMEOUT),
            arc_sealers=frozenset(s.lower() for s in settings.CORREIO_ARC_TRUSTED_SEALERS),
            spf_fail_reject=settings.CORREIO_SPF_FAIL_REJECT,
            rspamd_url=settings.CORREIO_RSPAMD_URL,
            rspamd_timeout=float(settings.CORREIO_RSPAMD_TIMEOUT),
        )
