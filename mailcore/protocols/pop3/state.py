"""POP3 without I/O: command parsing, the session states, the numbered view of a maildrop, and
the exact bytes of every reply (RFC 1939, RFC 2449, RFC 5034). Imports nothing from Django.

Sizes: RFC 1939 §11 asks for the size "as if the message were being transmitted": each line end
counts as CRLF (bare LFs are sent as CRLF), and a last line without an end counts with the CRLF
the server must add to terminate it; the byte-stuffing of lines starting with "." is not counted
(the client removes it). This is what Dovecot reports. STAT, LIST and the "+OK n octets" of RETR
therefore all equal the bytes a client has after un-stuffing.
"""

import base64
import binascii
import enum
from dataclasses import dataclass, field

from mailcore.mime.wire import dot_stuff, to_crlf

CRLF = b"\r\n"
# RFC 2449 §4: a command line is at most 255 octets including CRLF.
MAX_COMMAND_LINE = 255
# SASL lines carry base64 and are exempt from that limit (RFC 5034 §4); this still bounds them.
MAX_AUTH_LINE = 4096
MULTILINE_END = b".\r\n"


class State(enum.Enum):
    AUTHORIZATION = "AUTHORIZATION"
    TRANSACTION = "TRANSACTION"
    UPDATE = "UPDATE"


# Which commands each state accepts (RFC 1939 §§4-7, RFC 2449 §5, RFC 2595 §4, RFC 5034 §4).
# NOOP is a TRANSACTION command only (RFC 1939 §5; issue 15).
COMMANDS: dict[State, frozenset[str]] = {
    State.AUTHORIZATION: frozenset({"USER", "PASS", "AUTH", "STLS", "CAPA", "QUIT"}),
    State.TRANSACTION: frozenset(
        {"STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL", "CAPA", "QUIT"}
    ),
    State.UPDATE: frozenset(),
}
KNOWN_COMMANDS = frozenset().union(*COMMANDS.values())


class Pop3Error(Exception):
    """A ``-ERR`` reply. ``bad_command`` marks protocol errors (unknown or malformed commands),
    which the session counts to cut off clients that send garbage."""

    def __init__(self, text: str, *, code: str | None = None, bad_command: bool = False):
        super().__init__(text)
        self.text = text
        self.code = code
        self.bad_command = bad_command

    @property
    def reply(self) -> bytes:
        return err(self.text, self.code)


def ok(text: str = "") -> bytes:
    return b"+OK " + text.encode() + CRLF if text else b"+OK" + CRLF


def err(text: str, code: str | None = None) -> bytes:
    """A negative reply, with an RFC 2449 §8 response code in brackets when given."""
    prefix = f"[{code}] " if code else ""
    return f"-ERR {prefix}{text}".encode() + CRLF


def multiline(first: bytes, lines: list[str]) -> bytes:
    """A multi-line reply of short text lines (CAPA, LIST, UIDL), terminated by ".". None of
    them starts with "." so none needs stuffing."""
    body = "".join(line + "\r\n" for line in lines).encode()
    return first + body + MULTILINE_END


@dataclass(frozen=True)
class Command:
    verb: str
    args: tuple[str, ...]
    rest: str  # the text after the verb as sent (PASS takes it whole: RFC 1939 §7)


def parse_command(line: bytes) -> Command:
    """Parse one command line (its CRLF or LF already removed). Raises ``Pop3Error``."""
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        # A user name or password may be UTF-8 (RFC 6856 §1) or, from a broken client, not even
        # that: the credential check refuses those as it refuses a wrong password.
        if line[:5].upper() not in (b"USER ", b"PASS "):
            raise Pop3Error("command is not ASCII", bad_command=True) from None
        text = line.decode("utf-8", "surrogateescape")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise Pop3Error("control character in command", bad_command=True)
    verb, _, rest = text.partition(" ")
    verb = verb.upper()
    if not verb or verb not in KNOWN_COMMANDS:
        raise Pop3Error("unknown command", bad_command=True)
    # Arguments are bounded by the line limit rather than RFC 1939's 40 characters, which real
    # addresses given to USER exceed.
    args = tuple(rest.split()) if verb != "PASS" else ((rest,) if rest else ())
    return Command(verb, args, rest)


def parse_number(text: str, what: str = "message number") -> int:
    """A decimal argument (RFC 1939 §3: numbers are base-10, no sign). Raises ``Pop3Error``."""
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise Pop3Error(f"invalid {what}", bad_command=True)
    return int(text)


def expect_args(command: Command, low: int, high: int) -> tuple[str, ...]:
    if not low <= len(command.args) <= high:
        raise Pop3Error(f"wrong number of arguments for {command.verb}", bad_command=True)
    return command.args


def decode_sasl_plain(response: str) -> tuple[str, str]:
    """Decode an RFC 4616 PLAIN response into (authcid, password). An authzid other than empty
    or the authcid itself is refused: nobody may act as another user. Raises ``Pop3Error``."""
    try:
        decoded = base64.b64decode(response.strip(), validate=True)
        # Not UTF-8: kept undecodable, refused as a wrong password by the credential check.
        authzid, authcid, password = decoded.decode("utf-8", "surrogateescape").split("\0")
    except (binascii.Error, ValueError):
        raise Pop3Error("invalid SASL PLAIN response", code="AUTH") from None
    if not authcid or (authzid and authzid != authcid):
        raise Pop3Error("authentication failed", code="AUTH")
    return authcid, password


@dataclass
class MessageList:
    """The session's numbered view of its maildrop: message n is ``entries[n - 1]``, numbers do
    not change during the session, and deletions are only marks until QUIT (RFC 1939 §5)."""

    uids: list[int]
    sizes: list[int]
    unique_ids: list[str]
    deleted: set[int] = field(default_factory=set)

    def number(self, arg: str) -> int:
        """A message number argument, checked: it must exist and not be marked deleted."""
        n = parse_number(arg)
        if not 1 <= n <= len(self.uids):
            raise Pop3Error("no such message")
        if n in self.deleted:
            raise Pop3Error(f"message {n} already deleted")
        return n

    def uid(self, n: int) -> int:
        return self.uids[n - 1]

    def live(self) -> list[int]:
        return [n for n in range(1, len(self.uids) + 1) if n not in self.deleted]

    def stat(self) -> bytes:
        """RFC 1939 §5 STAT: messages marked deleted are not counted."""
        live = self.live()
        return ok(f"{len(live)} {sum(self.sizes[n - 1] for n in live)}")

    def list_all(self) -> bytes:
        live = self.live()
        total = sum(self.sizes[n - 1] for n in live)
        first = ok(f"{len(live)} messages ({total} octets)")
        return multiline(first, [f"{n} {self.sizes[n - 1]}" for n in live])

    def list_one(self, arg: str) -> bytes:
        n = self.number(arg)
        return ok(f"{n} {self.sizes[n - 1]}")

    def uidl_all(self) -> bytes:
        return multiline(ok(), [f"{n} {self.unique_ids[n - 1]}" for n in self.live()])

    def uidl_one(self, arg: str) -> bytes:
        n = self.number(arg)
        return ok(f"{n} {self.unique_ids[n - 1]}")

    def delete(self, arg: str) -> bytes:
        n = self.number(arg)
        self.deleted.add(n)
        return ok(f"message {n} deleted")

    def reset(self) -> bytes:
        """RFC 1939 §5 RSET: unmark every message marked deleted."""
        self.deleted.clear()
        total = sum(self.sizes)
        return ok(f"maildrop has {len(self.uids)} messages ({total} octets)")

    def deleted_uids(self) -> list[int]:
        return sorted(self.uids[n - 1] for n in self.deleted)


def retr_response(raw: bytes) -> list[bytes]:
    """The RETR reply as chunks to write: status line, the message with CRLF line ends and
    byte-stuffed, and the terminating "." line (RFC 1939 §§3, 5)."""
    wire = to_crlf(raw)
    return [ok(f"{len(wire)} octets"), dot_stuff(wire), MULTILINE_END]


def top_response(raw: bytes, lines: int) -> list[bytes]:
    """The TOP reply (RFC 1939 §7): the header, the blank line after it, then at most ``lines``
    lines of the body. A message without a blank line is all header."""
    wire = to_crlf(raw)
    if wire.startswith(CRLF):
        end = 2
    else:
        blank = wire.find(b"\r\n\r\n")
        end = len(wire) if blank < 0 else blank + 4
    cut = end
    for _ in range(lines):
        if cut >= len(wire):
            break
        next_end = wire.find(CRLF, cut)
        cut = len(wire) if next_end < 0 else next_end + 2
    return [ok(), dot_stuff(wire[:cut]), MULTILINE_END]
