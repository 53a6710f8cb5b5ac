"""Reading mbox files and Maildirs, and writing Maildirs, one message at a time.

Nothing here holds a whole mailbox in memory: the mbox reader reads line by line, the Maildir
reader lists file names and reads one file at a time, the writer writes each message as it
comes. No Django import.

- **mbox** (RFC 4155): a message starts at a ``From `` line at the start of the file or after
  an empty line. Lines quoted as ``>From `` (mboxrd: any number of ``>``) lose one ``>``. The
  ``From `` line's date (asctime) is the internal date, else the Date header. ``Status``
  (``R`` read) and ``X-Status`` (``A`` answered, ``F`` flagged, ``T`` draft, ``D`` deleted),
  the flags of mutt, Thunderbird, Pine and Dovecot, and ``X-Keywords`` become flags and are
  removed from the stored bytes, as Dovecot does: they are the old store's state, not mail.
- **Maildir** (https://cr.yp.to/proto/maildir.html): ``cur/`` and ``new/``; the info suffix
  ``:2,`` carries ``D`` draft, ``F`` flagged, ``R`` replied, ``S`` seen, ``T`` trashed, and
  lower-case letters name keywords through Dovecot's ``dovecot-keywords`` file. The file's
  modification time is the internal date (as Dovecot and Courier keep it).
- Line ends become CRLF (RFC 5322 §2.1), as they would arriving over SMTP.
"""

import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

MAILDIR_FLAGS = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen",
                 "T": "\\Deleted"}
FLAG_LETTERS = {flag: letter for letter, flag in MAILDIR_FLAGS.items()}
STATUS_FLAGS = {"R": "\\Seen"}
X_STATUS_FLAGS = {"A": "\\Answered", "F": "\\Flagged", "T": "\\Draft", "D": "\\Deleted"}
# Headers that are the old store's bookkeeping (Dovecot's mbox list), dropped on import.
MBOX_STATE_HEADERS = (b"status", b"x-status", b"x-keywords", b"x-uid", b"x-imap",
                      b"x-imapbase", b"content-length")
MAX_KEYWORD_LETTERS = 26
_MBOXRD_QUOTED = re.compile(rb"^>+From ")
_FROM_LINE_DATE = re.compile(rb"^From \S*\s+(.*?)\s*$")


@dataclass
class MailFile:
    """One message read from an mbox or a Maildir."""

    raw: bytes
    flags: list[str] = field(default_factory=list)
    internal_date: datetime | None = None
    source: str = ""
    end_offset: int = 0  # mbox: bytes of the file read so far (for progress)


def crlf(raw: bytes) -> bytes:
    """Every line end as CRLF (bare LF and bare CR included)."""
    return raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")


def _header_end(raw: bytes) -> int:
    """Offset of the empty line that ends the header (or the end)."""
    found = raw.find(b"\r\n\r\n")
    return len(raw) if found < 0 else found + 2


def _header_date(raw: bytes) -> datetime | None:
    header = raw[: _header_end(raw)]
    match = re.search(rb"(?im)^date:[ \t]*(.*(?:\r\n[ \t].*)*)", header)
    if not match:
        return None
    try:
        value = parsedate_to_datetime(match.group(1).decode("ascii", "replace").strip())
    except (TypeError, ValueError, IndexError):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- mbox ------------------------------------------------------------------------------------


def _from_line_date(line: bytes) -> datetime | None:
    match = _FROM_LINE_DATE.match(line)
    if not match:
        return None
    text = " ".join(match.group(1).decode("ascii", "replace").split())
    for fmt in ("%a %b %d %H:%M:%S %Y", "%a %b %d %H:%M:%S %z %Y", "%a %b %d %H:%M %Y"):
        try:
            value = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def _mbox_state(raw: bytes) -> tuple[bytes, list[str]]:
    """Split the mbox bookkeeping headers out of a message: (bytes without them, flags)."""
    end = _header_end(raw)
    kept: list[bytes] = []
    flags: list[str] = []
    current: list[bytes] | None = None
    for line in raw[:end].split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t") and current is not None:
            current.append(line)
            continue
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() in MBOX_STATE_HEADERS:
            current = []  # continuation lines of a dropped header are dropped too
            text = value.decode("ascii", "replace").strip()
            lname = name.strip().lower()
            if lname == b"status":
                flags += [STATUS_FLAGS[c] for c in text if c in STATUS_FLAGS]
            elif lname == b"x-status":
                flags += [X_STATUS_FLAGS[c] for c in text if c in X_STATUS_FLAGS]
            elif lname == b"x-keywords":
                flags += [k for k in re.split(r"[\s,]+", text) if k and not k.startswith("\\")]
            continue
        current = kept
        kept.append(line)
    header = b"".join(line + b"\r\n" for line in kept)
    return header + raw[end:], list(dict.fromkeys(flags))


def read_mbox(path: Path) -> Iterator[MailFile]:
    """The messages of an mbox file, in order, one at a time."""
    with open(path, "rb") as handle:
        lines: list[bytes] = []
        from_line = b""
        previous_blank = True
        number = 0

        def finish() -> MailFile | None:
            nonlocal number
            # The empty line before the next From line belongs to the format, not the message.
            body = lines[:-1] if lines and lines[-1] in (b"\n", b"\r\n") else lines
            if not from_line and not any(line.strip() for line in body):
                return None
            number += 1
            raw, flags = _mbox_state(crlf(b"".join(body)))
            date = _from_line_date(from_line) or _header_date(raw)
            return MailFile(raw, flags, date, f"{path}#{number}", offset)

        offset = 0
        for line in handle:
            if line.startswith(b"From ") and previous_blank:
                item = finish()
                if item is not None:
                    yield item
                lines, from_line = [], line.rstrip(b"\r\n")
                previous_blank = False
                offset += len(line)
                continue
            offset += len(line)
            if _MBOXRD_QUOTED.match(line):
                line = line[1:]
            lines.append(line)
            previous_blank = line in (b"\n", b"\r\n")
        item = finish()
        if item is not None:
            yield item


def mbox_size(path: Path) -> int:
    return path.stat().st_size


# --- Maildir ---------------------------------------------------------------------------------


def is_maildir(path: Path) -> bool:
    return path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir()


def _keyword_names(path: Path) -> dict[str, str]:
    """Letters ``a``-``z`` to keyword names, from Dovecot's ``dovecot-keywords`` (``0 name``)."""
    names: dict[str, str] = {}
    try:
        text = (path / "dovecot-keywords").read_text("utf-8", "replace")
    except OSError:
        return names
    for line in text.splitlines():
        number, _, name = line.partition(" ")
        if number.isdigit() and int(number) < MAX_KEYWORD_LETTERS and name.strip():
            names[chr(ord("a") + int(number))] = name.strip()
    return names


def maildir_flags(name: str, keywords: dict[str, str]) -> list[str]:
    _, sep, info = name.rpartition(":2,")
    if not sep:
        return []
    flags = [MAILDIR_FLAGS[c] for c in info if c in MAILDIR_FLAGS]
    flags += [keywords[c] for c in info if c in keywords]
    return list(dict.fromkeys(flags))


def maildir_names(path: Path) -> list[tuple[str, str]]:
    """(subfolder, file name) of every message, oldest first (names start with the delivery
    time)."""
    names = []
    for sub in ("cur", "new"):
        with os.scandir(path / sub) as entries:
            names += [(sub, entry.name) for entry in entries
                      if entry.is_file() and not entry.name.startswith(".")]
    return sorted(names, key=lambda item: _sort_key(item[1]))


def _sort_key(name: str) -> tuple:
    head = name.split(".", 1)[0]
    return (int(head) if head.isdigit() else 0, name)


def read_maildir(path: Path, names: list[tuple[str, str]] | None = None) -> Iterator[MailFile]:
    keywords = _keyword_names(path)
    for sub, name in names if names is not None else maildir_names(path):
        file = path / sub / name
        try:
            raw = file.read_bytes()
            mtime = file.stat().st_mtime
        except FileNotFoundError:  # taken away by a client while we read
            continue
        raw = crlf(raw)
        yield MailFile(raw, maildir_flags(name, keywords),
                       datetime.fromtimestamp(int(mtime), UTC) if mtime else _header_date(raw),
                       str(file))


# --- Writing a Maildir -----------------------------------------------------------------------


class MaildirWriter:
    """Write messages into a Maildir the way a delivery agent does: into ``tmp/``, then renamed
    into ``cur/`` with their flags in the info suffix and the internal date as mtime. Keywords
    get letters in ``dovecot-keywords`` (26 at most; further ones cannot be represented)."""

    def __init__(self, path: Path):
        self.path = path
        for sub in ("cur", "new", "tmp"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        self.host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
        self.keywords: dict[str, str] = {}
        self.count = 0

    def _letters(self, flags: list[str]) -> str:
        letters = {FLAG_LETTERS[f] for f in flags if f in FLAG_LETTERS}
        for flag in flags:
            if flag.startswith("\\"):
                continue
            letter = self.keywords.get(flag)
            if letter is None and len(self.keywords) < MAX_KEYWORD_LETTERS:
                letter = self.keywords[flag] = chr(ord("a") + len(self.keywords))
            if letter:
                letters.add(letter)
        return "".join(sorted(letters))

    def write(self, raw: bytes, flags: list[str], internal_date: datetime, uid: int) -> Path:
        stamp = int(internal_date.timestamp())
        self.count += 1
        base = f"{stamp}.M{uid}P{os.getpid()}Q{self.count}.{self.host}"
        tmp = self.path / "tmp" / base
        with open(tmp, "xb") as out:
            out.write(raw)
        os.utime(tmp, (stamp, stamp))
        final = self.path / "cur" / f"{base}:2,{self._letters(flags)}"
        os.rename(tmp, final)
        return final

    def close(self) -> None:
        if self.keywords:
            text = "".join(f"{ord(letter) - ord('a')} {name}\n"
                           for name, letter in sorted(self.keywords.items(),
                                                      key=lambda item: item[1]))
            (self.path / "dovecot-keywords").write_text(text, "utf-8")
