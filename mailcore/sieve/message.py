"""The message as a Sieve script sees it: header fields (decoded per RFC 5228 §2.7.2),
addresses, text bodies (RFC 5173), dates (RFC 5260), and header edits (RFC 5293) that later
tests see and that the stored copy carries. Parsing is lazy: a script testing only the subject
never decodes a body. Never raises on bad mail. No Django."""

from __future__ import annotations

import email
import email.header
import email.policy
from datetime import datetime
from email.utils import parsedate_to_datetime

from mailcore.mime.addresses import parse_address_list
from mailcore.mime.headers import decode_header_value, header_bytes_to_str

# Work bounds: the body text a test looks at, and the header fields kept.
MAX_BODY_TEXT = 1_000_000
MAX_HEADER_FIELDS = 1000


class SieveMessage:
    def __init__(self, raw: bytes):
        self.raw = raw
        self.size = len(raw)
        self.edited = False
        end = raw.find(b"\r\n\r\n")
        sep = 4
        lf_end = raw.find(b"\n\n")
        if lf_end >= 0 and (end < 0 or lf_end < end):
            end, sep = lf_end, 2
        if raw.startswith(b"\r\n") or raw.startswith(b"\n"):
            end, sep = 0, (2 if raw.startswith(b"\r\n") else 1)
        if end < 0:
            self.header_block, self.body = raw, b""
        elif end == 0:
            self.header_block, self.body = b"", raw[sep:]
        else:
            self.header_block, self.body = raw[:end + sep // 2], raw[end + sep:]
        self._fields: list[tuple[str, bytes]] | None = None
        self._texts: list[tuple[str, str]] | None = None
        # Per header name: decoded values and addresses (scripts test the same fields often).
        self._decoded: dict[str, list[str]] = {}
        self._addresses: dict[str, list[str]] = {}

    # --- header fields ------------------------------------------------------------------

    @property
    def fields(self) -> list[tuple[str, bytes]]:
        """(name, raw field bytes including the name and folding) in order."""
        if self._fields is None:
            fields: list[tuple[str, bytes]] = []
            for line in self.header_block.splitlines(keepends=True):
                if line[:1] in (b" ", b"\t") and fields:
                    name, value = fields[-1]
                    fields[-1] = (name, value + line)
                elif b":" in line and len(fields) < MAX_HEADER_FIELDS:
                    name = line.split(b":", 1)[0].strip().decode("latin-1")
                    fields.append((name, line))
            self._fields = fields
        return self._fields

    @staticmethod
    def _value(field: bytes) -> str:
        value = field.split(b":", 1)[1]
        text = header_bytes_to_str(value)
        return " ".join(text.replace("\r", "").split("\n")).strip() if "\n" in text else \
            text.strip()

    def raw_values(self, name: str) -> list[str]:
        """Unfolded values of a header, undecoded."""
        lname = name.lower()
        return [self._value(f) for n, f in self.fields if n.lower() == lname]

    def header_values(self, name: str) -> list[str]:
        """Unfolded values with RFC 2047 encoded words decoded (RFC 5228 §2.7.2)."""
        key = name.lower()
        values = self._decoded.get(key)
        if values is None:
            values = self._decoded[key] = [decode_header_value(v) for v in self.raw_values(name)]
        return values

    def addresses(self, name: str) -> list[str]:
        key = name.lower()
        result = self._addresses.get(key)
        if result is None:
            result = self._addresses[key] = []
            for value in self.raw_values(name):
                result.extend(addr for _display, addr in parse_address_list(value) if addr)
        return result

    def date(self, name: str) -> list[datetime | None]:
        result: list[datetime | None] = []
        for value in self.raw_values(name):
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                when = None
            result.append(when if when is not None and when.tzinfo is not None else None)
        return result

    # --- editheader (RFC 5293) ----------------------------------------------------------

    def add_header(self, name: str, value: str, last: bool) -> None:
        # RFC 5293 §5: the value is encoded when it is not ASCII, folded when long.
        encoded = value if value.isascii() else email.header.Header(value, "utf-8").encode()
        line = f"{name}: {encoded}".replace("\r", " ").replace("\n", " ").encode() + b"\r\n"
        fields = list(self.fields)
        fields.insert(len(fields) if last else 0, (name, line))
        self._fields = fields
        self.edited = True
        self._decoded.clear()
        self._addresses.clear()

    def delete_headers(self, name: str, keep) -> int:
        """Delete the fields named ``name`` for which ``keep(index, value)`` is False."""
        lname, count, kept, index = name.lower(), 0, [], 0
        for field in self.fields:
            if field[0].lower() == lname:
                index += 1
                if not keep(index, decode_header_value(self._value(field[1]))):
                    count += 1
                    continue
            kept.append(field)
        if count:
            self._fields = kept
            self.edited = True
            self._decoded.clear()
            self._addresses.clear()
        return count

    def count(self, name: str) -> int:
        lname = name.lower()
        return sum(1 for n, _f in self.fields if n.lower() == lname)

    def to_bytes(self) -> bytes:
        """The message with its edited header (the original bytes when nothing changed)."""
        if not self.edited:
            return self.raw
        fields = [f if f.endswith(b"\n") else f + b"\r\n" for _n, f in self.fields]
        return b"".join(fields) + b"\r\n" + self.body

    # --- body (RFC 5173) ----------------------------------------------------------------

    def texts(self) -> list[tuple[str, str]]:
        """(content type, decoded text) of every part, leaves only; bounded in size."""
        if self._texts is None:
            parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
            texts: list[tuple[str, str]] = []
            budget = MAX_BODY_TEXT
            for part in parsed.walk():
                if part.is_multipart() or budget <= 0:
                    continue
                ctype = part.get_content_type()
                if ctype.startswith("text/"):
                    try:
                        text = part.get_content()
                    except Exception:  # bad charset or transfer encoding: the raw payload
                        text = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
                else:
                    text = ""
                texts.append((ctype, text[:budget]))
                budget -= len(text)
            self._texts = texts
        return self._texts

    def body_values(self, transform: object) -> list[str]:
        """The text ``body`` compares: ``:raw`` the undecoded body, ``:content`` parts of the
        listed types, ``:text`` (default) the text parts (RFC 5173 §5)."""
        if transform == ":raw":
            return [self.body[:MAX_BODY_TEXT].decode("utf-8", "replace")]
        if isinstance(transform, list):
            wanted = [t.lower() for t in transform]
            result = []
            for ctype, text in self.texts():
                main = ctype.split("/")[0]
                if any(w == "" or w == ctype or w == main for w in wanted):
                    result.append(text)
            return result
        return [text for ctype, text in self.texts() if ctype.startswith("text/")]
