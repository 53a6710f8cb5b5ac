"""DKIM (RFC 6376): a signing key per local domain, and signing of outbound mail.

Mail is signed with the key of its From header's domain (the domain DMARC aligns with, RFC 7489
§3.1), else of its envelope sender's domain; rsa-sha256 (RFC 8301), relaxed/relaxed
canonicalization (RFC 6376 §3.4)."""

import base64
import logging
import time
from dataclasses import dataclass

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import transaction

from mailcore.mime.addresses import parse_address_list
from mailcore.mime.fields import first_header
from mailcore.mime.headers import split_header_block
from mailcore.models import DkimKey, Domain

logger = logging.getLogger("correio.dkim")

KEY_BITS = 2048  # RFC 8301 §3.2: at least 1024, 2048 recommended
# Headers signed when present (RFC 6376 §5.4.1's list of those to sign).
SIGNED_HEADERS = [
    b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"reply-to", b"in-reply-to",
    b"references", b"mime-version", b"content-type", b"content-transfer-encoding",
    b"list-id", b"list-unsubscribe", b"sender",
]


@dataclass(frozen=True)
class Signer:
    domain: str
    selector: str
    private_key: bytes


@transaction.atomic
def generate_dkim_key(domain: Domain, selector: str = "correio") -> DkimKey:
    """Create (or replace) the domain's RSA key; publish ``key.txt_record`` at ``key.dns_name``."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode("ascii")
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forget_cached_keys()
    transaction.on_commit(forget_cached_keys)
    key, _ = DkimKey.objects.update_or_create(
        domain=domain,
        defaults={
            "selector": selector,
            "private_key": pem,
            "public_key": base64.b64encode(public).decode("ascii"),
            "active": True,
        },
    )
    return key


def _from_domain(raw: bytes) -> str:
    headers, _ = split_header_block(raw)
    value = first_header(headers, "from")
    if value is None:
        return ""
    addresses = parse_address_list(value)
    return addresses[0][1].rpartition("@")[2].lower() if addresses else ""


# Keys looked up recently, per process: a worker signs many messages of few domains. A key made
# or changed in another process is used after at most KEY_CACHE_SECONDS.
KEY_CACHE_SECONDS = 30.0
_key_cache: dict[str, tuple[float, Signer | None]] = {}


def forget_cached_keys() -> None:
    _key_cache.clear()


def _signer_of(domain: str) -> Signer | None:
    now = time.monotonic()
    cached = _key_cache.get(domain)
    if cached is not None and now - cached[0] < KEY_CACHE_SECONDS:
        return cached[1]
    key = (
        DkimKey.objects.filter(domain__name=domain, active=True)
        .values_list("selector", "private_key")
        .first()
    )
    signer = Signer(domain, key[0], key[1].encode("ascii")) if key else None
    _key_cache[domain] = (now, signer)
    return signer


def signer_for(raw: bytes, mail_from: str) -> Signer | None:
    """The key to sign this message with, if its domain has one."""
    for domain in dict.fromkeys(
        d for d in (_from_domain(raw), mail_from.rpartition("@")[2].lower()) if d
    ):
        signer = _signer_of(domain)
        if signer is not None:
            return signer
    return None


def sign(clean: bytes, signer: Signer) -> bytes:
    """Prepend a DKIM-Signature to a message with CRLF line ends. On a signing error the
    message goes out unsigned (and the error is logged): unsigned mail beats lost mail."""
    try:
        signature = dkim.sign(
            clean,
            signer.selector.encode("ascii"),
            signer.domain.encode("ascii"),
            signer.private_key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=SIGNED_HEADERS,
        )
    except Exception:
        logger.exception("DKIM signing for %s failed", signer.domain)
        return clean
    return signature + clean
