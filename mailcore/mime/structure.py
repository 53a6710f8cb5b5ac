"""Body structure scanner: the MIME part tree of a raw message with exact byte offsets.

The tree is computed once at delivery and cached, so IMAP serves BODYSTRUCTURE and
BODY[section] (RFC 3501 §6.4.5, §7.4.2) by slicing the stored bytes, never re-parsing.
Implements multipart framing per RFC 2046 §5.1.1 (the line break before a delimiter belongs to
the delimiter; preamble and epilogue are not parts; transport padding after a delimiter), the
multipart/digest default of RFC 2046 §5.1.5, message/rfc822 encapsulation (§5.2.1), and header
parameters per RFC 2045, RFC 2183 and RFC 2231.

The scanner is iterative with explicit limits (MAX_DEPTH, MAX_PARTS), so hostile nesting can
neither exhaust the Python stack nor memory; it never raises. Imports nothing from Django.
"""

from __future__ import annotations

import re

from mailcore.mime.addresses import build_envelope
from mailcore.mime.headers import (
    find_header_end,
    get_param,
    header_bytes_to_str,
    parse_content_type,
    parse_disposition,
    split_header_lines,
    unfold,
)

# Defects beyond this many are dropped: a hostile message can have a million bad lines.
MAX_DEFECTS = 100
# Deeper multiparts and messages are kept as opaque text/plain leaves. Real mail rarely nests
# beyond 10 levels; Dovecot's default message_max_nesting is 100 too (lib-mail message-parser).
MAX_DEPTH = 100
# A message with more parts than this is hostile; the rest of its body stays unstructured.
MAX_PARTS = 10_000

_TOKEN = re.compile(r"[\s]*([^\s;(]*)")
_MIME_FIELDS = frozenset(
    {
        "content-type",
        "content-transfer-encoding",
        "content-id",
        "content-description",
        "content-disposition",
        "content-language",
        "content-location",
        "content-md5",
    }
)


class _Scan:
    __slots__ = ("raw", "defects", "parts")

    def __init__(self, raw: bytes, defects: list[str]):
        self.raw = raw
        self.defects = defects
        self.parts = 0


def _make_part(scan: _Scan, start: int, end: int, default: tuple[str, str]) -> tuple[dict, list]:
    """Parse the part's MIME headers in raw[start:end]; return (node, headers)."""
    raw = scan.raw
    scan.parts += 1
    header_end, body_start = find_header_end(raw, start, end)
    headers = split_header_lines(raw[start:header_end], scan.defects) if header_end > start else []
    if header_end == end and end > start:
        scan.defects.append("header block not terminated by an empty line")
    mime: dict[str, bytes] = {}
    for name, value in headers:
        key = name.lower()
        if key in _MIME_FIELDS:
            if key in mime:
                scan.defects.append(f"duplicate {name} header ignored")
            else:
                mime[key] = value
    ctype = mime.get("content-type")
    if ctype is not None:
        maintype, subtype, params, valid = parse_content_type(
            unfold(header_bytes_to_str(ctype)), default
        )
        if not valid:
            scan.defects.append("invalid Content-Type, using the default")
            if (maintype, subtype) != ("text", "plain"):
                params = []
    else:
        maintype, subtype = default
        params = []
    cte = mime.get("content-transfer-encoding")
    encoding = _TOKEN.match(header_bytes_to_str(cte).lower()).group(1) if cte else ""
    disposition = mime.get("content-disposition")
    if disposition is not None:
        disposition = parse_disposition(header_bytes_to_str(disposition))
        if not disposition[0]:
            disposition = None
    node = {
        "type": maintype,
        "subtype": subtype,
        "params": params,
        "id": _text(mime.get("content-id")),
        "description": _text(mime.get("content-description")),
        "encoding": encoding or "7bit",
        "disposition": disposition,
        "language": _text(mime.get("content-language")),
        "location": _text(mime.get("content-location")),
        "md5": _text(mime.get("content-md5")),
        "header_start": start,
        "body_start": body_start,
        "body_end": end,
        "size": end - body_start,
        "lines": raw.count(b"\n", body_start, end),
        "children": [],
        "envelope": None,
    }
    return node, headers


def _text(value: bytes | None) -> str | None:
    return None if value is None else header_bytes_to_str(value)


def _make_opaque(node: dict) -> None:
    """Turn a container part into a text/plain leaf (past MAX_DEPTH or MAX_PARTS)."""
    node["type"] = "text"
    node["subtype"] = "plain"
    node["params"] = []


def _delimiters(
    raw: bytes, boundary: bytes, start: int, end: int
) -> tuple[list[tuple[int, int]], bool]:
    """Find the body parts of a multipart body in raw[start:end].

    Returns ([(part_start, part_end), ...], closed). A delimiter line is ``--boundary``, an
    optional ``--``, optional spaces or tabs, then the line end (RFC 2046 §5.1.1). The line break
    before a delimiter belongs to the delimiter, so a part ends before it.
    """
    delim = b"--" + boundary
    dlen = len(delim)
    parts: list[tuple[int, int]] = []
    part_start = -1  # -1 while in the preamble
    seg_start = start
    pos = start
    while True:
        p = raw.find(delim, pos, end)
        if p < 0:
            break
        pos = p + dlen
        if p != start and raw[p - 1] != 0x0A:
            continue
        q = p + dlen
        closing = raw.startswith(b"--", q) and q + 2 <= end
        if closing:
            q += 2
        while q < end and raw[q] in b" \t":
            q += 1
        if q < end:
            c = raw[q]
            if c == 0x0A:
                q += 1
            elif c == 0x0D:
                q += 2 if q + 1 < end and raw[q + 1] == 0x0A else 1
            else:
                continue
        # The part (or preamble) before this delimiter ends before the delimiter's line break.
        e = p
        if e > seg_start and raw[e - 1] == 0x0A:
            e -= 1
            if e > seg_start and raw[e - 1] == 0x0D:
                e -= 1
        if part_start >= 0:
            parts.append((part_start, e))
        if closing:
            return parts, True
        part_start = seg_start = q
        pos = q
    if part_start >= 0:
        parts.append((part_start, end))
    return parts, False


def scan(raw: bytes) -> tuple[dict, list[tuple[str, bytes]], list[str]]:
    """Scan a message; return (structure, top-level headers, defects). Never raises."""
    defects: list[str] = []
    state = _Scan(raw, defects)
    root, root_headers = _make_part(state, 0, len(raw), ("text", "plain"))
    stack: list[tuple[dict, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        maintype = node["type"]
        if maintype == "multipart":
            _expand_multipart(state, node, depth, stack)
        elif maintype == "message" and node["subtype"] in ("rfc822", "global"):
            _expand_message(state, node, depth, stack)
    if len(defects) > 1:
        defects[:] = list(dict.fromkeys(defects))[:MAX_DEFECTS]
    return root, root_headers, defects


def _expand_multipart(state: _Scan, node: dict, depth: int, stack: list) -> None:
    if depth >= MAX_DEPTH or state.parts >= MAX_PARTS:
        state.defects.append("multipart beyond the nesting or part limit kept opaque")
        _make_opaque(node)
        return
    boundary = get_param(node["params"], "boundary")
    boundary = boundary.rstrip() if boundary else ""
    ranges: list[tuple[int, int]] = []
    if boundary:
        try:
            bound = boundary.encode("utf-8")
        except UnicodeEncodeError:
            bound = boundary.encode("utf-8", "replace")
        ranges, closed = _delimiters(state.raw, bound, node["body_start"], node["body_end"])
        if ranges and not closed:
            state.defects.append("multipart closing delimiter missing")
    else:
        state.defects.append("multipart without a boundary parameter")
    children = node["children"]
    if not ranges:
        # Dovecot answers a multipart with no parts with one empty text/plain part.
        state.defects.append("multipart without body parts")
        end = node["body_end"]
        child, _ = _make_part(state, end, end, ("text", "plain"))
        children.append(child)
        return
    room = MAX_PARTS - state.parts
    if len(ranges) > room:
        state.defects.append("too many body parts; the rest is not structured")
        ranges = ranges[: max(room, 1)]
    default = ("message", "rfc822") if node["subtype"] == "digest" else ("text", "plain")
    for start, end in ranges:
        child, _ = _make_part(state, start, end, default)
        children.append(child)
        if child["type"] in ("multipart", "message"):
            stack.append((child, depth + 1))


def _expand_message(state: _Scan, node: dict, depth: int, stack: list) -> None:
    if depth >= MAX_DEPTH or state.parts >= MAX_PARTS:
        state.defects.append("message beyond the nesting or part limit kept opaque")
        _make_opaque(node)
        return
    child, headers = _make_part(state, node["body_start"], node["body_end"], ("text", "plain"))
    node["children"].append(child)
    node["envelope"] = build_envelope(headers)
    if child["type"] in ("multipart", "message"):
        stack.append((child, depth + 1))


def scan_structure(raw: bytes) -> dict:
    """The JSON-able part tree of ``raw`` with byte offsets (see module docstring). Never raises."""
    return scan(raw)[0]


def find_part(structure: dict, section: list[int]) -> dict | None:
    """The part a section number names (RFC 3501 §6.4.5), or None if there is no such part.

    ``[]`` is the whole message. In a non-multipart message, part 1 is the message itself (its
    body); a message/rfc822 part's numbers continue into the encapsulated message, so for a
    message/rfc822 part 2, ``[2, 1]`` is part 1 of its multipart, or its non-multipart top part.
    """
    node = structure
    is_message = True
    last = len(section) - 1
    for i, number in enumerate(section):
        if not isinstance(number, int) or number < 1:
            return None
        if node["type"] == "multipart":
            children = node["children"]
            if number > len(children):
                return None
            node = children[number - 1]
        elif is_message and number == 1:
            pass
        else:
            return None
        is_message = False
        if i < last and node["type"] == "message" and node["children"]:
            node = node["children"][0]
            is_message = True
    return node


def iter_parts(structure: dict):
    """Yield every part node of the tree in document order (iteratively)."""
    stack = [structure]
    while stack:
        node = stack.pop()
        yield node
        children = node.get("children")
        if children:
            stack.extend(reversed(children))
