"""FETCH (RFC 3501 §6.4.5, §7.4.2; CONDSTORE/QRESYNC modifiers, RFC 7162 §3.1.4.1, §3.2.6;
BINARY, RFC 3516 §4.2): planning (which columns to read, whether the stored bytes are needed,
\\Seen to set) and formatting of the untagged FETCH responses, BODY[section] octets sliced from
the stored message with the offsets cached at delivery, BINARY[section] the same octets with
their content-transfer-encoding undone (off the event loop when large).

:func:`run_fetch` is the handler body; ``cmd_FETCH`` in
:mod:`mailcore.protocols.imap.handlers.selected` calls it."""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from dataclasses import dataclass, field

from mailcore.mime.binary import KNOWN as KNOWN_ENCODINGS
from mailcore.mime.binary import UnknownEncoding, decode_transfer
from mailcore.mime.structure import find_part
from mailcore.protocols.common.services import call_service
from mailcore.protocols.imap import response as fmt
from mailcore.protocols.imap.commands import Reply, format_uid_set
from mailcore.protocols.imap.lexer import FetchAtt, Section
from mailcore.protocols.imap.parser import Fetch
from mailcore.services import imap_read
from mailcore.services.common import UidRanges

FETCH_CHUNK = 2000  # messages per database read
BLOB_BATCH_BYTES = 4 * 1024 * 1024  # stored bytes loaded at once
# Output bounds (issue 12: 150 x BODY.PEEK[] of a 1 MB message made 150 MB of output): equal
# body items are answered once, and one FETCH asks for at most this many distinct ones.
MAX_BODY_ITEMS = 32
STREAM_THRESHOLD = 64 * 1024  # body items this large are written in slices
FLUSH_THRESHOLD = 256 * 1024  # buffered output written once it reaches this


def _header_fields(block: bytes, names: tuple[str, ...], exclude: bool) -> bytes:
    """The fields of a header block named (or, with ``exclude``, not named) in ``names``,
    byte for byte with their folding, followed by the empty line (§6.4.5)."""
    wanted = {name.lower() for name in names}
    out = []
    keep = False
    for line in block.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):
            if keep:
                out.append(line)
            continue
        if line in (b"\r\n", b"\n"):
            break
        name = line.split(b":", 1)[0].strip().decode("ascii", "replace").lower()
        keep = (name in wanted) != exclude
        if keep:
            out.append(line)
    out.append(b"\r\n")
    return b"".join(out)


def section_bytes(raw: bytes, structure: dict, section: Section) -> bytes | None:
    """The octets of a BODY[section] (§6.4.5) sliced from the stored message with the cached
    offsets; None when the message has no such part."""
    spec = section.spec
    if section.parts:
        part = find_part(structure, list(section.parts))
        if part is None:
            return None
        if spec == "":
            return raw[part["body_start"] : part["body_end"]]
        if spec == "MIME":
            return raw[part["header_start"] : part["body_start"]]
        # HEADER/TEXT of a part address the message it encapsulates (message/rfc822).
        if part["type"] != "message" or not part["children"]:
            return None
        node = part["children"][0]
    else:
        node = structure
        if spec == "":
            return raw
    if spec == "TEXT":
        return raw[node["body_start"] : node["body_end"]]
    header = raw[node["header_start"] : node["body_start"]]
    if spec == "HEADER":
        return header
    return _header_fields(header, section.fields, spec == "HEADER.FIELDS.NOT")


def binary_bytes(raw: bytes, structure: dict, parts: tuple[int, ...]) -> bytes | None:
    """The octets of BINARY[parts] (RFC 3516 §4.2): the part's body with its content-transfer-
    encoding undone; ``[]`` is the whole message as stored (a header has no encoding to undo).
    None when there is no such part; raises UnknownEncoding."""
    if not parts:
        return raw
    part = find_part(structure, list(parts))
    if part is None:
        return None
    return decode_transfer(raw[part["body_start"] : part["body_end"]], part["encoding"])


@dataclass
class FetchPlan:
    """What one FETCH reads and answers: the attributes in reply order, the message columns
    read (``index`` maps a column to its position in a row, the UID being 0)."""

    atts: list[FetchAtt]
    columns: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    needs_blob: bool = False

    @property
    def names(self) -> set[str]:
        return {att.name for att in self.atts}

    def add(self, name: str) -> None:
        if name not in self.names:
            self.atts.append(FetchAtt(name))

    def choose_columns(self) -> None:
        names = self.names
        self.needs_blob = any(att.needs_blob for att in self.atts)
        columns: list[str] = []
        if "FLAGS" in names:
            columns.extend(imap_read.FLAG_COLUMNS)
        if "ENVELOPE" in names:
            columns.append("envelope")
        if "INTERNALDATE" in names:
            columns.append("internal_date")
        if "RFC822.SIZE" in names or self.needs_blob:
            columns.append("size")
        if "BODY" in names or "BODYSTRUCTURE" in names or self.needs_blob:
            columns.append("structure")
        if self.needs_blob:
            columns.append("blob_id")
        if "MODSEQ" in names:
            columns.append("modseq")
        self.columns = columns
        self.index = {name: i + 1 for i, name in enumerate(columns)}

    def flag_row(self, row) -> imap_read.FlagRow:
        i = self.index["seen"]
        modseq = row[self.index["modseq"]] if "modseq" in self.index else 0
        return imap_read.FlagRow(row[0], modseq, *row[i : i + 6])


def plan_fetch(cmd: Fetch) -> FetchPlan:
    """The attributes as asked, each once, with what the protocol adds: UID for UID FETCH
    (§6.4.8). ``BODY[x]`` and ``BODY.PEEK[x]`` answer with the same item, so they are one, not
    a peek when either is not (§6.4.5). Raises Reply past MAX_BODY_ITEMS body items."""
    unique: dict[tuple, FetchAtt] = {}
    for att in cmd.atts:
        key = (att.name, att.section, att.partial)
        if key not in unique or (unique[key].peek and not att.peek):
            unique[key] = att
    atts = list(unique.values())
    if sum(att.needs_blob for att in atts) > MAX_BODY_ITEMS:
        raise Reply("NO", f"[LIMIT] At most {MAX_BODY_ITEMS} body sections in one FETCH")
    if cmd.uid and not any(att.name == "UID" for att in atts):
        atts.insert(0, FetchAtt("UID"))
    return FetchPlan(atts)


async def run_fetch(session, cmd: Fetch) -> str:
    sel = session.require_selected()
    ranges = sel.resolve(cmd.set, cmd.uid)
    plan = plan_fetch(cmd)
    changed_since = cmd.changedsince
    if changed_since is not None or "MODSEQ" in plan.names:
        session.enable_condstore()
        plan.add("MODSEQ")  # RFC 7162 §3.1.4.1
    if cmd.vanished:
        # RFC 7162 §3.2.6: UID FETCH (CHANGEDSINCE m VANISHED) needs QRESYNC enabled.
        if not session.qresync:
            raise Reply("BAD", "ENABLE QRESYNC first")
        largest = max(sel.uids[-1] if sel.uids else 0, sel.folder.uidnext - 1, 1)
        wanted = sel.saved if cmd.set.saved else UidRanges(tuple(cmd.set.resolve(largest)))
        vanished = await call_service(
            imap_read.vanished_since, sel.folder.pk, changed_since, wanted
        )
        if vanished:
            session.send(f"* VANISHED (EARLIER) {format_uid_set(vanished)}\r\n")
    if not ranges:
        return "FETCH completed"
    seen_now: set[int] = set()
    if not sel.readonly and any(att.sets_seen for att in plan.atts):
        # §6.4.5: a non-peek body fetch sets \Seen; the new flags go out with the data.
        modseq, changed, _rows, _modified = await call_service(
            imap_read.store_flags, sel.folder, sel.uid_ranges(ranges), ["\\Seen"], "add", False,
        )
        sel.own_change(modseq)
        seen_now = set(changed)
    if seen_now and "FLAGS" not in plan.names:
        plan.add("FLAGS")
        if session.condstore:
            plan.add("MODSEQ")  # RFC 7162 §3.1: flag updates carry MODSEQ
    plan.choose_columns()
    uids = sel.uids
    for i0, i1 in ranges:
        for start in range(i0, i1 + 1, FETCH_CHUNK):
            end = min(i1, start + FETCH_CHUNK - 1)
            rows = await call_service(
                imap_read.fetch_rows, sel.folder.pk, uids[start], uids[end],
                tuple(plan.columns), changed_since,
            )
            if "FLAGS" in plan.names:
                session.announce_keywords(plan.flag_row(row).keywords for row in rows)
            if plan.needs_blob:
                await _fetch_with_blobs(session, plan, rows)
            else:
                session.send(format_rows(session, plan, rows))
            await session.flush()
    return "FETCH completed"


async def _fetch_with_blobs(session, plan: FetchPlan, rows) -> None:
    size_i, sha_i = plan.index["size"], plan.index["blob_id"]
    batch: list = []
    batch_bytes = 0
    for row in rows + [None]:
        if row is not None and (not batch or batch_bytes + row[size_i] <= BLOB_BATCH_BYTES):
            batch.append(row)
            batch_bytes += row[size_i]
            continue
        if batch:
            blobs = await call_service(imap_read.load_blobs, list({r[sha_i] for r in batch}))
            await _write_with_bodies(session, plan, batch, blobs)
            del blobs
            await session.flush()
        if row is not None:
            batch, batch_bytes = [row], row[size_i]


def _item(session, plan: FetchPlan, att: FetchAtt, row) -> str | None:
    """A non-body FETCH item (§7.4.2); None for a body item."""
    index = plan.index
    name = att.name
    if name == "UID":
        return f"UID {row[0]}"
    if name == "FLAGS":
        return "FLAGS " + session.flags_text(plan.flag_row(row))
    if name == "ENVELOPE":
        return "ENVELOPE " + fmt.envelope(row[index["envelope"]])
    if name == "INTERNALDATE":
        return "INTERNALDATE " + fmt.internaldate(row[index["internal_date"]])
    if name == "RFC822.SIZE":
        return f"RFC822.SIZE {row[index['size']]}"
    if name == "BODYSTRUCTURE":
        return "BODYSTRUCTURE " + fmt.body_structure(row[index["structure"]])
    if name == "BODY":
        return "BODY " + fmt.body_structure(row[index["structure"]], False)
    if name == "MODSEQ":
        return f"MODSEQ ({row[index['modseq']]})"
    return None


def _sequence_number(uids, uid: int) -> int | None:
    i = bisect_left(uids, uid)
    if i >= len(uids) or uids[i] != uid:
        return None
    return i + 1


def format_rows(session, plan: FetchPlan, rows) -> bytes:
    """The untagged FETCH responses of rows without body items (§7.4.2), in one piece: they are
    a few hundred octets each, and FETCH_CHUNK rows at a time."""
    out = []
    uids = session.selected.uids
    for row in rows:
        seq = _sequence_number(uids, row[0])
        if seq is None:
            continue
        items = " ".join(_item(session, plan, att, row) for att in plan.atts)
        out.append(f"* {seq} FETCH ({items})\r\n".encode("utf-8", "replace"))
    return b"".join(out)


async def _write_with_bodies(session, plan: FetchPlan, rows, blobs: dict[str, bytes]) -> None:
    """The untagged FETCH responses of rows with body items, written as they are made: a body
    item larger than STREAM_THRESHOLD goes to the transport in slices, and what is buffered is
    flushed past FLUSH_THRESHOLD, so memory does not grow with the output (issue 12)."""
    uids = session.selected.uids
    index = plan.index
    for row in rows:
        seq = _sequence_number(uids, row[0])
        if seq is None:
            continue
        raw = blobs.get(row[index["blob_id"]], b"")
        structure = row[index["structure"]]
        # An encoding BINARY cannot undo ends the command before this response starts, so no
        # half response is left on the wire (RFC 3516 §4.2: NO [UNKNOWN-CTE]).
        for att in plan.atts:
            if att.binary:
                _check_encoding(att, structure)
        session.send(f"* {seq} FETCH (")
        for k, att in enumerate(plan.atts):
            if k:
                session.send(b" ")
            item = _item(session, plan, att, row)
            if item is None:
                item = await _binary_item(att, raw, structure) if att.binary else None
            if item is None:
                item = _body_item(att, raw, structure)
            if isinstance(item, str):
                session.send(item)
                continue
            label, data = item
            # RFC 3516 §7: BINARY data holding NULs goes as a literal8.
            literal8 = b"\0" in data and label.startswith(b"BINARY")
            session.send(label + (b" ~{%d}\r\n" if literal8 else b" {%d}\r\n") % len(data))
            if len(data) >= STREAM_THRESHOLD:
                await session.write_large(data)
            else:
                session.send(data)
            del data, item
        session.send(b")\r\n")
        if session.pending_bytes >= FLUSH_THRESHOLD:
            await session.flush()


def _check_encoding(att: FetchAtt, structure: dict) -> None:
    parts = att.section.parts
    part = find_part(structure, list(parts)) if parts else None
    if part is not None and (part["encoding"] or "").lower() not in KNOWN_ENCODINGS:
        raise Reply("NO", f"[UNKNOWN-CTE] Cannot decode part {att.section.wire()}")


async def _binary_item(att: FetchAtt, raw: bytes, structure: dict) -> str | tuple[bytes, bytes]:
    """BINARY[...] (label and decoded octets) or BINARY.SIZE[...] (RFC 3516 §4.2, §4.3); a part
    that does not exist is NIL (size 0). Decoding a large part runs in a thread, not on the
    event loop. Raises Reply NO [UNKNOWN-CTE] for an encoding that cannot be undone."""
    parts = att.section.parts
    try:
        if len(raw) >= STREAM_THRESHOLD:
            data = await asyncio.to_thread(binary_bytes, raw, structure, parts)
        else:
            data = binary_bytes(raw, structure, parts)
    except UnknownEncoding:  # checked before the response started (_check_encoding)
        raise Reply("NO", "[UNKNOWN-CTE] Cannot decode the content-transfer-encoding") from None
    label = att.response_name()
    if att.name == "BINARY.SIZE":
        return f"{label} {len(data) if data is not None else 0}"
    if data is None:
        return f"{label} NIL"
    if att.partial is not None:
        start, length = att.partial
        data = data[start : start + length]
    return label.encode("ascii"), data


def _body_item(att: FetchAtt, raw: bytes, structure: dict) -> tuple[bytes, bytes]:
    """The label and octets of a body item (§6.4.5)."""
    if att.name == "RFC822":
        return b"RFC822", raw
    if att.name == "RFC822.HEADER":
        return b"RFC822.HEADER", section_bytes(raw, structure, Section(spec="HEADER")) or b""
    if att.name == "RFC822.TEXT":
        return b"RFC822.TEXT", section_bytes(raw, structure, Section(spec="TEXT")) or b""
    # A part that does not exist reads as empty (as Dovecot answers).
    data = section_bytes(raw, structure, att.section) or b""
    if att.partial is not None:
        start, length = att.partial
        data = data[start : start + length]
    return att.response_name().encode("utf-8", "replace"), data
