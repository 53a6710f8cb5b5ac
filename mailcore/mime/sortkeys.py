"""The keys IMAP SORT and THREAD compare, derived once at delivery from the parsed message
(RFC 5256 SORT and THREAD, RFC 5957 SORT=DISPLAY), so that sorting a large folder reads a few
short columns and parses nothing.

- the base subject (RFC 5256 §2.1), and whether extracting it removed a reply or forward
  marker (used by THREAD=REFERENCES, §2.2 step 5);
- the addr-mailbox of the first From, To and Cc address (SORT FROM/TO/CC, §3);
- the display name of the first From and To address, or its addr-spec when it has none
  (RFC 5957 §2).

Keys are stored already case-mapped so that comparing them is comparing strings: i;ascii-casemap
(ASCII letters to upper case) for RFC 5256, i;unicode-casemap (``casefold``, then NFKD) for
the display keys of RFC 5957 §3. Pure: no Django."""

from __future__ import annotations

import re
import unicodedata

from mailcore.mime.headers import decode_header_value

# Keys are compared on their first 100 characters: they live in one covering index (SORT reads
# only the index), and a PostgreSQL index entry must stay under 2,704 bytes.
MAX_KEY = 100

_ASCII_UPPER = {c: c - 32 for c in range(ord("a"), ord("z") + 1)}

# RFC 5256 §5 (ABNF): subj-blob = "[" *BLOBCHAR "]" *WSP; subj-refwd = ("re" / ("fw" ["d"]))
# *WSP [subj-blob] ":"; subj-leader = (*subj-blob subj-refwd) / WSP; subj-trailer = "(fwd)" / WSP.
_BLOB = r"\[[^\[\]]*\][ \t]*"
_REFWD = re.compile(rf"(?:{_BLOB})*(?:re|fwd?)[ \t]*(?:{_BLOB})?:", re.I)
_LEADING_BLOB = re.compile(_BLOB)
_TRAILER = re.compile(r"(?:\(fwd\)|[ \t])\Z", re.I)
_WSP = re.compile(r"[ \t\r\n]+")


def base_subject(subject: str) -> tuple[str, bool]:
    """The base subject of RFC 5256 §2.1 (not yet case-mapped), and whether a reply or
    forward marker was removed on the way (§2.1 steps 2, 3 and 5)."""
    # Step 1: the subject is already decoded; runs of white space become one space.
    text = _WSP.sub(" ", subject)
    reply = False
    while True:
        # Step 2: remove trailing "(fwd)" and white space.
        while True:
            match = _TRAILER.search(text)
            if not match:
                break
            if match.group(0).lower() == "(fwd)":
                reply = True
            text = text[: match.start()]
        # Steps 3 and 4, until neither removes anything.
        while True:
            before = text
            text = text.lstrip(" \t")
            match = _REFWD.match(text)
            if match:
                reply = True
                text = text[match.end():]
            match = _LEADING_BLOB.match(text)
            if match and text[match.end():].strip(" \t"):
                text = text[match.end():]
            if text == before:
                break
        # Step 5: "[fwd: subject]" is a forward; unwrap it and start again from step 2.
        if text[:5].lower() == "[fwd:" and text.endswith("]"):
            text = text[5:-1]
            reply = True
            continue
        return text.strip(" \t"), reply


def ascii_casemap(text: str) -> str:
    """i;ascii-casemap (RFC 4790 §9.2): ASCII letters compared as upper case."""
    return text.translate(_ASCII_UPPER)


def _first_address(addresses: list | None) -> list | None:
    """The first entry of an ENVELOPE address list: an address, or the start of a group
    (``[None, None, name, None]``), whose name then counts, as Dovecot and imaptest have it."""
    for address in addresses or ():
        if address[2] is not None:
            return address
    return None


def _addr_mailbox(address: list | None) -> str:
    return ascii_casemap(address[2] or "")[:MAX_KEY] if address else ""


def _display(address: list | None) -> str:
    """RFC 5957 §2: the decoded display name, else the addr-spec."""
    if not address:
        return ""
    name = decode_header_value(address[0]).strip() if address[0] else ""
    if not name:
        mailbox, host = address[2] or "", address[3] or ""
        name = f"{mailbox}@{host}" if host else mailbox
    # i;unicode-casemap (RFC 5051): case folded, then decomposed, so "Á" sorts with "A".
    return unicodedata.normalize("NFKD", name.casefold())[:MAX_KEY]


def sort_fields(subject: str, envelope: list) -> dict:
    """The cached sort columns of a message, from its decoded subject and its IMAP ENVELOPE
    (addresses as ``[name, adl, mailbox, host]``, names not yet RFC 2047-decoded)."""
    base, reply = base_subject(subject)
    first_from = _first_address(envelope[2])
    first_to = _first_address(envelope[5])
    return {
        "sort_subject": ascii_casemap(base)[:MAX_KEY],
        "subject_is_reply": reply,
        "sort_from": _addr_mailbox(first_from),
        "sort_to": _addr_mailbox(first_to),
        "sort_cc": _addr_mailbox(_first_address(envelope[6])),
        "display_from": _display(first_from),
        "display_to": _display(first_to),
    }
