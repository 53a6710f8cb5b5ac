"""Fixtures for inbound trust: one dnsmasq for the session serving SPF, DKIM (keys generated
here) and DMARC records of the test domains, and sender authentication turned on against it."""

import base64
from dataclasses import dataclass

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.smtp.conftest import local, start_smtp, stored  # noqa: F401 (fixtures)
from tests.trust.dnsserver import DnsServer, SilentResolver, Zone
from tests.trust.rspamdserver import RspamdServer

SELECTOR = "sel"
# The MX under test sees every client at 127.0.0.1; "elsewhere" is an address it never has.
ELSEWHERE = "192.0.2.1"


def new_key() -> tuple[bytes, str]:
    """(private key PEM, the p= value of its DKIM key record)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, base64.b64encode(public).decode()


@dataclass
class TrustDns:
    server: DnsServer
    keys: dict[str, bytes]

    @property
    def address(self) -> str:
        return self.server.address

    def sign(self, raw: bytes, domain: str, selector: str = SELECTOR) -> bytes:
        signature = dkim.sign(raw, selector.encode(), domain.encode(), self.keys[domain],
                              include_headers=[b"from", b"to", b"subject", b"date"])
        return signature + raw

    def seal(self, raw: bytes, domain: str, results: str) -> bytes:
        """ARC-seal ``raw`` as the forwarder ``domain`` whose own check said ``results``."""
        raw = f"Authentication-Results: mx.{domain}; {results}\r\n".encode() + raw
        headers = dkim.arc_sign(raw, SELECTOR.encode(), domain.encode(), self.keys[domain],
                                f"mx.{domain}".encode(),
                                include_headers=[b"from", b"to", b"subject", b"date"])
        return b"".join(headers) + raw


SIGNING_DOMAINS = ("pass.test", "reject.test", "quarantine.test", "lists.test", "other.test")


def build_zone(keys: dict[str, str]) -> Zone:
    zone = Zone()
    for domain, public in keys.items():
        zone.txt.append((f"{SELECTOR}._domainkey.{domain}", f"v=DKIM1; k=rsa; p={public}"))
    zone.txt += [
        # Sends from us (127.0.0.1); DMARC reject: only real mail of its own passes.
        ("pass.test", "v=spf1 ip4:127.0.0.1 -all"),
        ("_dmarc.pass.test", "v=DMARC1; p=reject"),
        # Never sends from 127.0.0.1: mail "from" it here is forged unless DKIM-signed.
        ("reject.test", f"v=spf1 ip4:{ELSEWHERE} -all"),
        ("_dmarc.reject.test", "v=DMARC1; p=reject; adkim=r; aspf=r"),
        ("quarantine.test", f"v=spf1 ip4:{ELSEWHERE} -all"),
        ("_dmarc.quarantine.test", "v=DMARC1; p=quarantine"),
        ("nodmarc.test", f"v=spf1 ip4:{ELSEWHERE} -all"),
        ("monitor.test", f"v=spf1 ip4:{ELSEWHERE} -all"),
        ("_dmarc.monitor.test", "v=DMARC1; p=none"),
        # A mailing list that forwards and ARC-seals.
        ("lists.test", "v=spf1 ip4:127.0.0.1 -all"),
        # Our own domain: sends from elsewhere, so nobody at 127.0.0.1 passes as it.
        ("example.test", f"v=spf1 ip4:{ELSEWHERE} -all"),
        ("_dmarc.example.test", "v=DMARC1; p=none"),
        # Hostile records (RFC 7208 §4.6.4): an include loop; 11 look-ups; a void chain.
        ("loop.test", "v=spf1 include:loop.test -all"),
        ("many.test", "v=spf1 " + " ".join(f"a:h{i}.many.test" for i in range(11)) + " -all"),
        ("void.test", "v=spf1 a:n1.void.test a:n2.void.test a:n3.void.test -all"),
        ("twospf.test", "v=spf1 -all"),
        ("twospf.test", "v=spf1 +all"),
        ("badkey.test", "v=spf1 -all"),
        (f"{SELECTOR}._domainkey.badkey.test", "v=DKIM1; k=rsa; p=!!notbase64!!"),
        ("_dmarc.badkey.test", "v=DMARC1; p=reject"),
    ]
    for i in range(11):
        zone.a.append((f"h{i}.many.test", ELSEWHERE))
    # More of RFC 7208 §4.6.4: a redirect loop, an include chain 12 deep, 12 MX hosts.
    zone.txt += [("redirloop.test", "v=spf1 redirect=redirloop2.test"),
                 ("redirloop2.test", "v=spf1 redirect=redirloop.test"),
                 ("deep.test", "v=spf1 include:d1.deep.test -all"),
                 ("d12.deep.test", "v=spf1 -all"),
                 ("mxmany.test", "v=spf1 mx -all")]
    zone.txt += [(f"d{i}.deep.test", f"v=spf1 include:d{i + 1}.deep.test -all")
                 for i in range(1, 12)]
    for i in range(12):
        zone.mx.append(("mxmany.test", f"m{i}.mxmany.test", i + 1))
        zone.a.append((f"m{i}.mxmany.test", ELSEWHERE))
    # A huge answer: 200 TXT records of 250 octets each (needs TCP; cut to MAX_RECORDS).
    zone.txt += [("huge.test", f"r{i:03d} " + "x" * 245) for i in range(200)]
    zone.txt.append(("_dmarc.huge.test", "v=DMARC1; p=reject"))
    return zone


@pytest.fixture(scope="session")
def trust_dns():
    keys = {domain: new_key() for domain in SIGNING_DOMAINS}
    server = DnsServer(build_zone({d: public for d, (_, public) in keys.items()}))
    try:
        yield TrustDns(server, {d: pem for d, (pem, _) in keys.items()})
    finally:
        server.stop()


@pytest.fixture
def sender_auth(settings, trust_dns):
    """Sender authentication on, against the test DNS server."""
    from mailcore.trust.hook import forget_cached

    forget_cached()  # the database is new for each test: so are its domains and rules
    settings.CORREIO_SENDER_AUTH = True
    settings.CORREIO_DNS_NAMESERVERS = [trust_dns.address]
    settings.CORREIO_DNS_TIMEOUT = 2
    settings.CORREIO_ARC_TRUSTED_SEALERS = []
    settings.CORREIO_SPF_FAIL_REJECT = False
    return trust_dns


@pytest.fixture
def silent_resolver():
    resolver = SilentResolver()
    yield resolver
    resolver.close()


def message(sender: str, to: str = "demo@example.test", subject: str = "hello") -> bytes:
    return (
        f"From: Someone <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        "Date: Mon, 07 Dec 2026 10:00:00 +0000\r\nMessage-ID: <m1@remote.test>\r\n\r\n"
        "Body line.\r\n"
    ).encode()


@pytest.fixture(scope="session")
def rspamd_server(trust_dns):
    """Debian's rspamd on loopback ports (its DNS through the test dnsmasq; Redis db 6 of the
    REDIS_URL host, or of 127.0.0.1:6379, for learning)."""
    import os
    from urllib.parse import urlsplit

    url = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    server = RspamdServer(trust_dns.address, (url.hostname or "127.0.0.1", url.port or 6379, 6))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def spam_engine(sender_auth, settings, rspamd_server):
    settings.CORREIO_RSPAMD_URL = rspamd_server.url
    settings.CORREIO_RSPAMD_CONTROLLER_URL = rspamd_server.controller_url
    settings.CORREIO_RSPAMD_TIMEOUT = 5
    return rspamd_server
