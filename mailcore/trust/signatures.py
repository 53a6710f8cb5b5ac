"""DKIM (RFC 6376) verification of every signature of a message, and the ARC chain (RFC 8617),
with dkimpy, its keys looked up through the message's resolver.

Each signature gets a result of RFC 8601 §2.7.1: ``pass``, ``fail`` (a bad signature or body
hash, a missing or revoked key), ``permerror`` (a malformed signature or key, or one that does
not sign From), ``policy`` (valid, but for only part of the body: l=) or ``temperror`` (DNS
gave no answer in time). At most ``MAX_SIGNATURES`` are checked: each costs DNS and RSA
work, and a message stacked with signatures would otherwise buy unbounded CPU."""

import logging
from dataclasses import dataclass
from functools import lru_cache

import dkim
import dkim.crypto
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from dkim.canonicalization import CanonicalizationPolicy
from dkim.util import InvalidTagValueList, parse_tag_value

from mailcore.mime.headers import split_header_block
from mailcore.trust.dns import DnsTempError, Resolver

logger = logging.getLogger("correio.trust")
MAX_SIGNATURES = 8
# RFC 8301 §3.2: keys shorter than 1024 bits are not accepted.
MIN_KEY_BITS = 1024


class _Quiet(logging.Logger):
    """dkimpy logs every failed signature at ERROR; a forged one is not our error."""

    def __init__(self):
        super().__init__("correio.trust.dkimpy", logging.CRITICAL)


_QUIET = _Quiet()


def _int2str(n: int, length: int = -1) -> bytearray:
    if length < 0:
        length = max(1, (n.bit_length() + 7) // 8)
    return bytearray(n.to_bytes(length, "big"))


def _str2int(s) -> int:
    return int.from_bytes(bytes(s), "big")


# dkimpy converts RSA integers a byte at a time in Python: about 1.4 ms of a 2 ms signature
# check, on the MX's event-loop core. The same conversions, done by int's own C methods.
dkim.crypto.int2str = _int2str
dkim.crypto.str2int = _str2int
# A key record parsed once per (selector name, record text), not for every message signed with
# it (0.3 ms: tag parsing, base64 and ASN.1). A pure function of those two; errors (raised)
# are not cached. The DNS answer it is given is itself only reused within its TTL.
dkim.evaluate_pk = lru_cache(maxsize=1024)(dkim.evaluate_pk)
_HASHES = {"sha256": hashes.SHA256, "sha1": hashes.SHA1}


@lru_cache(maxsize=1024)
def _public_key(modulus: int, exponent: int) -> rsa.RSAPublicKey:
    return rsa.RSAPublicNumbers(exponent, modulus).public_key()


def _rsa_verify(hash, signature: bytes, public_key: dict) -> bool:
    """RSASSA-PKCS1-v1_5 verification (RFC 8017 §8.2.2) by OpenSSL, in place of dkimpy's
    ``pow`` in Python (0.4 ms of the MX's GIL per message, against 0.03 ms): the same check of
    the same digest with the same key, so a signature passes here exactly when it passes there.
    A signature not of the modulus' length, or not below it, is invalid (§8.2.2 step 1)."""
    algorithm = _HASHES.get(hash.name.lower())
    if algorithm is None:
        raise TypeError(f"unsupported hash {hash.name}")
    try:
        key = _public_key(public_key["modulus"], public_key["publicExponent"])
        key.verify(bytes(signature), hash.digest(), padding.PKCS1v15(), Prehashed(algorithm()))
    except InvalidSignature:
        return False
    except ValueError as error:  # a key OpenSSL refuses (even modulus, tiny exponent...)
        raise dkim.KeyFormatError(f"unusable RSA key: {error}") from error
    return True


dkim.RSASSA_PKCS1_v1_5_verify = _rsa_verify


@dataclass(frozen=True)
class DkimResult:
    result: str
    domain: str = ""
    selector: str = ""


@dataclass(frozen=True)
class ArcResult:
    """``result`` is the chain validation status (RFC 8617 §4.4): pass, fail or none;
    ``sealer`` the d= of the newest ARC-Seal (who vouches for the chain)."""

    result: str
    sealer: str = ""
    instances: int = 0


def _dnsfunc(resolver: Resolver):
    def txt(name, timeout=5):
        name = name.decode("ascii", "replace") if isinstance(name, bytes) else str(name)
        records = resolver.txt(name.rstrip("."))
        return records[0] if records else None

    return txt


def _tags(value: bytes) -> dict[bytes, bytes]:
    try:
        return parse_tag_value(value.replace(b"\r\n", b"").replace(b"\n", b""))
    except (InvalidTagValueList, ValueError, IndexError):
        return {}


def _text(value: bytes | None) -> str:
    return (value or b"").decode("ascii", "replace").strip()[:253]


def verify_dkim(resolver: Resolver, raw: bytes, headers: list | None = None) -> list[DkimResult]:
    """A result per DKIM-Signature field, topmost first (none: an empty list); ``headers``:
    ``split_header_block(raw)``'s fields when the caller has them."""
    if headers is None:
        headers, _ = split_header_block(raw)
    signatures = [value for name, value in headers if name.lower() == "dkim-signature"]
    results = []
    checker = None
    for index, value in enumerate(signatures[:MAX_SIGNATURES]):
        domain = selector = None
        try:
            # One parse of the message for all its signatures; verify() resets what it uses.
            checker = checker or dkim.DKIM(raw, logger=_QUIET, minkey=MIN_KEY_BITS)
            checker.domain = checker.selector = None
            ok = checker.verify(idx=index, dnsfunc=_dnsfunc(resolver))
            domain, selector = checker.domain, checker.selector
            result = "pass" if ok else "fail"
            if ok:
                result = _signed_enough(checker)
        except DnsTempError:
            result = "temperror"
        except dkim.ValidationError as error:
            # RFC 6376 §3.7: a body hash mismatch is a failed signature; the rest of what
            # dkimpy reports as invalid is a malformed one.
            result = "fail" if str(error).startswith("body hash mismatch") else "permerror"
        except dkim.DKIMException:
            result = "permerror"
        except Exception:  # dkimpy must not take the listener down: a defined verdict instead
            logger.exception("DKIM verification error")
            result = "permerror"
        if domain is None or selector is None:  # refused before dkimpy read them: ask the tags
            tags = _tags(value)
            domain, selector = tags.get(b"d"), tags.get(b"s")
        results.append(DkimResult(result, _text(domain).lower(), _text(selector)))
    return results


def _signed_enough(checker: dkim.DKIM) -> str:
    """What a cryptographically valid signature is worth (dkimpy checks neither):
    - RFC 6376 §5.4, §6.1.1: a signature whose h= leaves out From is ignored with PERMFAIL;
      otherwise whoever holds any mail signed so could put any address of that domain in
      From and pass DMARC with it;
    - §8.2: with l= shorter than the body, whatever follows was added by someone else (the
      reader would see it as the signer's): ``policy`` (RFC 8601 §2.7.1), not pass."""
    fields = checker.signature_fields
    if b"from" not in checker.include_headers:
        return "permerror"
    if b"l" in fields:
        policy = CanonicalizationPolicy.from_c_value(fields.get(b"c", b"simple/simple"))
        if int(fields[b"l"]) < len(policy.canonicalize_body(checker.body)):
            return "policy"
    return "pass"


def verify_arc(resolver: Resolver, raw: bytes, headers: list | None = None) -> ArcResult:
    if headers is None:
        headers, _ = split_header_block(raw)
    seals = [_tags(value) for name, value in headers if name.lower() == "arc-seal"]
    if not seals:
        return ArcResult("none")
    newest = max(seals, key=lambda tags: _instance(tags))
    sealer = _text(newest.get(b"d")).lower()
    if len(seals) > 50:  # RFC 8617 §4.2.1: at most 50 instances
        return ArcResult("fail", sealer, len(seals))
    try:
        status, _, _ = dkim.arc_verify(raw, logger=_QUIET, dnsfunc=_dnsfunc(resolver),
                                       minkey=MIN_KEY_BITS)
        result = status.decode() if isinstance(status, bytes) else str(status)
    except DnsTempError:
        result = "temperror"
    except Exception:
        logger.exception("ARC verification error (sealer %s)", sealer)
        result = "fail"
    return ArcResult(result, sealer, len(seals))


def _instance(tags: dict[bytes, bytes]) -> int:
    try:
        return int(tags.get(b"i", b"0"))
    except ValueError:
        return 0
