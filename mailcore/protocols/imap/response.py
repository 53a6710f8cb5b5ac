"""IMAP4rev1 response formatting: strings, flags, dates, ENVELOPE and BODYSTRUCTURE.

Pure (no I/O, no Django). Values come from the cached ``envelope`` and ``structure`` columns
(RFC 3501 §7.4.2), so FETCH never re-parses mail. Strings that cannot be quoted (8-bit, CR,
LF) become literals (§4.3); the caller encodes the whole response as UTF-8, which is what the
literal lengths count.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_SAFE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*\Z")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_SYSTEM = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")


def string(value: str) -> str:
    """An IMAP string: quoted when possible, else a literal."""
    if _SAFE.match(value):
        return '"' + value + '"'
    if value.isascii() and "\r" not in value and "\n" not in value and "\0" not in value:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{{{len(value.encode('utf-8', 'replace'))}}}\r\n{value}"


def utf8_string(value: str) -> str:
    """A string for a client that enabled UTF-8 (RFC 6855 §3, RFC 9051 §4.3): quoted, UTF-8
    included; a literal only for what no quoted string may hold (CR, LF, NUL)."""
    if "\r" in value or "\n" in value or "\0" in value:
        return string(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def nstring(value: str | None) -> str:
    return "NIL" if value is None else string(value)


def literal(data: bytes) -> bytes:
    return b"{%d}\r\n%s" % (len(data), data)


def flags(seen: bool, answered: bool, flagged: bool, deleted: bool, draft: bool,
          keywords: list, recent: bool = False) -> str:
    out = [name for name, on in zip(_SYSTEM, (seen, answered, flagged, deleted, draft),
                                    strict=True) if on]
    if recent:
        out.append("\\Recent")
    if keywords:
        out.extend(keywords)
    return "(" + " ".join(out) + ")"


def internaldate(value: datetime) -> str:
    value = value.astimezone(UTC)
    return (
        f'"{value.day:02d}-{_MONTHS[value.month - 1]}-{value.year:04d} '
        f'{value.hour:02d}:{value.minute:02d}:{value.second:02d} +0000"'
    )


def _addresses(addresses: list | None) -> str:
    if not addresses:
        return "NIL"
    return "(" + "".join(
        "(" + " ".join(nstring(part) for part in address) + ")" for address in addresses
    ) + ")"


def envelope(env: list) -> str:
    """ENVELOPE from the cached list [date, subject, from, sender, reply-to, to, cc, bcc,
    in-reply-to, message-id] (§7.4.2)."""
    date, subject, from_, sender, reply_to, to, cc, bcc, in_reply_to, message_id = env
    return (
        f"({nstring(date)} {nstring(subject)} {_addresses(from_)} {_addresses(sender)} "
        f"{_addresses(reply_to)} {_addresses(to)} {_addresses(cc)} {_addresses(bcc)} "
        f"{nstring(in_reply_to)} {nstring(message_id)})"
    )


def _params(params: list | None) -> str:
    if not params:
        return "NIL"
    return "(" + " ".join(f"{string(k)} {string(v)}" for k, v in params) + ")"


def _disposition(value: list | None) -> str:
    if not value or not value[0]:
        return "NIL"
    return f"({string(value[0])} {_params(value[1])})"


def _language(value: str | None) -> str:
    if value is None:
        return "NIL"
    tags = [tag.strip() for tag in value.split(",") if tag.strip()]
    if not tags:
        return "NIL"
    if len(tags) == 1:
        return string(tags[0])
    return "(" + " ".join(string(tag) for tag in tags) + ")"


def body_structure(node: dict, extensible: bool = True) -> str:
    """BODYSTRUCTURE (``extensible``) or BODY from a cached part tree (§7.4.2). Iterative over
    nesting would be overkill: the tree is at most MAX_DEPTH (100) levels deep."""
    maintype = node["type"]
    if maintype == "multipart":
        inner = "".join(body_structure(child, extensible) for child in node["children"])
        text = f"({inner} {string(node['subtype'])}"
        if extensible:
            text += (
                f" {_params(node['params'])} {_disposition(node['disposition'])}"
                f" {_language(node['language'])} {nstring(node['location'])}"
            )
        return text + ")"
    text = (
        f"({string(maintype)} {string(node['subtype'])} {_params(node['params'])} "
        f"{nstring(node['id'])} {nstring(node['description'])} "
        f"{string(node['encoding'])} {node['size']}"
    )
    if maintype == "message" and node["children"] and node.get("envelope"):
        text += (
            f" {envelope(node['envelope'])} {body_structure(node['children'][0], extensible)}"
            f" {node['lines']}"
        )
    elif maintype == "text":
        text += f" {node['lines']}"
    if extensible:
        text += (
            f" {nstring(node['md5'])} {_disposition(node['disposition'])}"
            f" {_language(node['language'])} {nstring(node['location'])}"
        )
    return text + ")"
