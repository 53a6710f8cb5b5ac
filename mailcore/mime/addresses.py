"""Addresses and the IMAP envelope: the RFC 5322 §3.4 address grammar (with the obsolete route
syntax of §4.4), read tolerantly as IMAP's ENVELOPE needs it (RFC 3501 §7.4.2), and the simple
``(name, address)`` pairs the webmail and the outbound queue use.

Nothing here raises on bad input: broken input degrades to a best-effort value. Imports nothing
from Django.
"""

from __future__ import annotations

from mailcore.mime.headers import (
    decode_header_value,
    header_bytes_to_raw_str,
    header_bytes_to_str,
    read_quoted,
    unfold,
)

# --- addresses (RFC 5322 §3.4, obs-route §4.4) ---------------------------------------------------

_ADDR_SPECIALS = frozenset("<>:;,@")


def _tokenize_addresses(text: str) -> list[tuple[str, str, bool]]:
    """Tokens (kind, text, preceded_by_space): kind 'a' atom, 'q' quoted, 'c' comment, or special."""
    tokens: list[tuple[str, str, bool]] = []
    n = len(text)
    i = 0
    space = False
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            space = True
            i += 1
        elif c == '"':
            quoted, i = read_quoted(text, i + 1)
            tokens.append(("q", quoted, space))
            space = False
        elif c == "(":
            depth = 1
            chars = []
            i += 1
            while i < n and depth:
                c = text[i]
                if c == "\\" and i + 1 < n:
                    chars.append(text[i + 1])
                    i += 2
                    continue
                if c == "(":
                    depth += 1
                elif c == ")":
                    depth -= 1
                    if not depth:
                        i += 1
                        break
                chars.append(c)
                i += 1
            tokens.append(("c", "".join(chars), space))
            space = True
        elif c in _ADDR_SPECIALS:
            tokens.append((c, c, space))
            space = False
            i += 1
        else:
            j = i + 1
            while j < n and text[j] not in _ADDR_SPECIALS and text[j] not in ' \t\r\n"(':
                j += 1
            tokens.append(("a", text[i:j], space))
            space = False
            i = j
    return tokens


def _join_phrase(tokens: list[tuple[str, str, bool]]) -> str:
    out = []
    for kind, text, space in tokens:
        if kind == "c":
            continue
        if space and out:
            out.append(" ")
        out.append(text)
    return "".join(out).strip()


def _join_addr(tokens: list[tuple[str, str, bool]]) -> str:
    out = []
    for kind, text, _space in tokens:
        if kind == "c":
            continue
        if kind == "q":
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        out.append(text)
    return "".join(out)


def _make_mailbox(pre: list, angle: list | None) -> list | None:
    comments = [t[1] for t in pre if t[0] == "c"]
    if angle is not None:
        name = _join_phrase(pre) or None
        adl = None
        for k, tok in enumerate(angle):
            if tok[0] == ":":
                adl = _join_addr(angle[:k]) or None
                angle = angle[k + 1 :]
                break
        addr_tokens = angle
    else:
        if not [t for t in pre if t[0] != "c"]:
            return None
        name = None
        adl = None
        addr_tokens = pre
    if name is None and comments:
        # Old style "user@host (Real Name)": the comment is the only name there is.
        name = comments[-1].strip() or None
    at = -1
    for k, tok in enumerate(addr_tokens):
        if tok[0] == "@":
            at = k
    if at >= 0:
        mailbox = _join_addr(addr_tokens[:at])
        host = _join_addr(addr_tokens[at + 1 :])
    else:
        mailbox = _join_addr(addr_tokens)
        host = ""
    return [name, adl, mailbox, host]


def parse_envelope_addresses(value: str) -> list[list[str | None]] | None:
    """Parse an address header into IMAP ENVELOPE address structures (RFC 3501 §7.4.2).

    Each address is [name, adl, mailbox, host]; names stay as written (no RFC 2047 decoding).
    A group is [None, None, name, None] ... [None, None, None, None]. Returns None when
    nothing parses, as the ENVELOPE's NIL. Never raises.
    """
    tokens = _tokenize_addresses(unfold(value))
    out: list[list[str | None]] = []
    pre: list = []
    angle: list | None = None
    in_group = False
    i = 0
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        kind = tok[0]
        if kind == "<":
            angle = []
            i += 1
            while i < n and tokens[i][0] != ">":
                if tokens[i][0] != "<":
                    angle.append(tokens[i])
                i += 1
            i += 1
            continue
        if kind == ">":
            i += 1
            continue
        if kind == ",":
            box = _make_mailbox(pre, angle)
            if box is not None:
                out.append(box)
            pre, angle = [], None
        elif kind == ":" and angle is None and not in_group:
            out.append([None, None, _join_phrase(pre), None])
            in_group = True
            pre = []
        elif kind == ";":
            box = _make_mailbox(pre, angle)
            if box is not None:
                out.append(box)
            pre, angle = [], None
            if in_group:
                out.append([None, None, None, None])
                in_group = False
        else:
            pre.append(tok)
        i += 1
    box = _make_mailbox(pre, angle)
    if box is not None:
        out.append(box)
    if in_group:
        out.append([None, None, None, None])
    return out or None


def envelope_to_pairs(addresses: list | None) -> list[tuple[str, str]]:
    """(decoded display name, addr-spec) pairs from ENVELOPE addresses; groups flattened."""
    pairs = []
    for name, _adl, mailbox, host in addresses or ():
        if host is None:
            continue
        addr = f"{mailbox}@{host}" if host else (mailbox or "")
        if not addr:
            continue
        pairs.append((decode_header_value(name) if name else "", addr))
    return pairs


def parse_address_list(value: str | bytes) -> list[tuple[str, str]]:
    """Parse an address header into (decoded display name, addr-spec) pairs, dropping empties.

    Uses the same grammar as the IMAP ENVELOPE so the webmail and IMAP clients agree;
    group members are included, group names are not. Never raises.
    """
    if isinstance(value, bytes):
        value = header_bytes_to_str(value)
    return envelope_to_pairs(parse_envelope_addresses(value))


# --- IMAP ENVELOPE (RFC 3501 §7.4.2) ------------------------------------------------------------

_ENVELOPE_ADDRESS_FIELDS = ("from", "sender", "reply-to", "to", "cc", "bcc")


def build_envelope(headers: list[tuple[str, bytes]]) -> list:
    """The IMAP ENVELOPE of a header list, JSON-able.

    [date, subject, from, sender, reply-to, to, cc, bcc, in-reply-to, message-id]: strings are
    the raw unfolded values (not RFC 2047-decoded) or None when absent; address fields are
    lists of [name, adl, mailbox, host] or None. Sender and Reply-To default to From, as the
    server is to fill them in (§7.4.2). The first occurrence of each header counts.
    """
    wanted = {"date": None, "subject": None, "in-reply-to": None, "message-id": None}
    for name in _ENVELOPE_ADDRESS_FIELDS:
        wanted[name] = None
    missing = len(wanted)
    for field, value in headers:
        key = field.lower()
        if key in wanted and wanted[key] is None:
            wanted[key] = value
            missing -= 1
            if not missing:
                break

    def text(key: str) -> str | None:
        value = wanted[key]
        return None if value is None else header_bytes_to_raw_str(value)

    def addresses(key: str) -> list | None:
        value = wanted[key]
        if value is None:
            return None
        return parse_envelope_addresses(header_bytes_to_raw_str(value))

    from_ = addresses("from")
    sender = addresses("sender") or from_
    reply_to = addresses("reply-to") or from_
    return [
        text("date"),
        text("subject"),
        from_,
        sender,
        reply_to,
        addresses("to"),
        addresses("cc"),
        addresses("bcc"),
        text("in-reply-to"),
        text("message-id"),
    ]
