"""The ``Authentication-Results`` field (RFC 8601) we add at the MX, and the removal of any that
claims to be ours.

RFC 8601 §5: a receiver must remove (or rename) fields carrying its own authserv-id that
arrived with the message, since only it may write them; readers (our webmail) then trust
exactly the one field we prepend. Values taken from the message (DKIM d=, the sender) are
written only when they are plain tokens, so a hostile value cannot inject a fake result."""

import re

from mailcore.trust.dmarc import DmarcResult
from mailcore.trust.fields import drop_fields
from mailcore.trust.signatures import ArcResult, DkimResult
from mailcore.trust.spf import SpfResult

NAME = b"authentication-results"
_TOKEN = re.compile(r"[A-Za-z0-9._+=@-]{1,254}\Z")
_COMMENT = re.compile(rb"\([^()]*\)")


def _safe(value: str) -> str | None:
    return value if _TOKEN.match(value or "") else None


def build_header(hostname: str, *, spf_helo: SpfResult, spf_mailfrom: SpfResult,
                 mail_from: str, dkim: list[DkimResult], dmarc: DmarcResult,
                 arc: ArcResult) -> bytes:
    """Our field, folded one method a line, CRLF-terminated."""
    parts = []
    sender = _safe(mail_from) or _safe(spf_mailfrom.domain)
    parts.append(f"spf={spf_mailfrom.result}" + (f" smtp.mailfrom={sender}" if sender else ""))
    helo = _safe(spf_helo.domain)
    parts.append(f"spf={spf_helo.result}" + (f" smtp.helo={helo}" if helo else ""))
    if not dkim:
        parts.append("dkim=none")
    for result in dkim:
        text = f"dkim={result.result}"
        if _safe(result.domain):
            text += f" header.d={result.domain}"
        if _safe(result.selector):
            text += f" header.s={result.selector}"
        parts.append(text)
    text = f"dmarc={dmarc.result}"
    if dmarc.published != "none" or dmarc.result in ("pass", "fail"):
        text += f" (p={dmarc.published})"
    if _safe(dmarc.domain):
        text += f" header.from={dmarc.domain}"
    parts.append(text)
    if arc.result != "none":
        parts.append(f"arc={arc.result}" + (f" (sealer {arc.sealer})" if _safe(arc.sealer)
                                             else ""))
    return (f"Authentication-Results: {hostname};\r\n\t" + ";\r\n\t".join(parts) + "\r\n").encode()


def authserv_id(value: bytes) -> str:
    """The authserv-id of an Authentication-Results value (RFC 8601 §2.2), comments dropped."""
    head = value.split(b";", 1)[0]
    for _ in range(4):  # nested comments are few; a hostile nest just stays unmatched
        head = _COMMENT.sub(b" ", head)
    words = head.split()
    if not words:
        return ""
    # The id is a token or a quoted-string (RFC 2045 ``value``): "mail.example.test" names us
    # as much as the bare token, and so does the name with its root dot.
    word = words[0].decode("ascii", "replace")
    if word.startswith('"'):
        word = word.strip('"').replace("\\", "")
    return word.lower().rstrip(".")


def strip_ours(raw: bytes, hostname: str) -> bytes:
    """``raw`` without Authentication-Results fields naming ``hostname``; otherwise byte for
    byte the same."""
    hostname = hostname.lower().rstrip(".")
    end = len(raw)
    return drop_fields(raw, lambda name, start: name == NAME and authserv_id(
        _field_value(raw, start, end)) == hostname)


def _field_value(raw: bytes, start: int, end: int) -> bytes:
    """The unfolded value of the field starting at ``start`` (up to 4 KiB is enough for the
    authserv-id)."""
    chunk = raw[start:min(end, start + 4096)]
    value = chunk.partition(b":")[2]
    return re.sub(rb"\r?\n[ \t]", b" ", value).split(b"\n", 1)[0]
