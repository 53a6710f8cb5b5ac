"""IMAP4rev1 command parser: bytes of one complete command in, a typed command object out.

Pure (no I/O, no Django). The server frames a command (a line, and for each line ending in a
literal marker ``{n}`` / ``{n+}`` the n octets that follow, RFC 3501 §4.3 and RFC 7888
LITERAL+) and hands the whole thing here, without its final CRLF.

Every command is a dataclass registered under its wire name(s) with the session states that
allow it (RFC 3501 §6: any state, not authenticated, authenticated, selected), as pymap's
``pymap/parsing/command`` does. :data:`COMMANDS` is the one registry: the server checks the
state from it (before accepting a literal), and the handler modules grouped by the same states
(:mod:`mailcore.protocols.imap.handlers`) are checked against it, so parser, allowed states and
``cmd_NAME`` cannot drift apart. Search keys (§6.4.4) are the typed values of
:mod:`mailcore.services.imap_keys`, fetch attributes (§6.4.5) the :class:`FetchAtt` of the lexer.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from mailcore.protocols.imap.arguments import QResync, fetch_atts, id_params, select_params
from mailcore.protocols.imap.extended import (
    ListArguments,
    create_uses,
    list_arguments,
    read_charset,
    return_options,
    search_keys,
    sort_criteria,
    thread_algorithm,
)
from mailcore.protocols.imap.lexer import (
    MAX_DEPTH,
    MAX_MODSEQ,
    MAX_NUMBER,
    BadCharset,
    FetchAtt,
    ParseError,
    Reader,
    Section,
    SequenceSet,
    decode_mailbox,
    encode_mailbox,
    literal_request,
    parse_tag,
)
from mailcore.services import imap_keys as k


class State(enum.Enum):
    """Connection states (RFC 3501 §3)."""

    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


# The state groups of RFC 3501 §6.1-§6.4 (§6.3 commands stay valid once a folder is selected).
ANY = frozenset({State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED})
NOT_AUTHENTICATED = frozenset({State.NOT_AUTHENTICATED})
AUTHENTICATED = frozenset({State.AUTHENTICATED, State.SELECTED})
SELECTED = frozenset({State.SELECTED})
NOWHERE: frozenset[State] = frozenset()  # DONE outside IDLE: known, never allowed


@dataclass(frozen=True)
class CommandSpec:
    """One registry entry: the class that parses the command and the states that allow it."""

    name: str
    cls: type[Command]
    states: frozenset[State]
    has_uid_form: bool = False  # "UID name" exists (RFC 3501 §6.4.8, UIDPLUS, MOVE)
    small_literals: bool = True  # False only for APPEND: its literal is a message


COMMANDS: dict[str, CommandSpec] = {}


def command(*names: str, states: frozenset[State], uid: bool = False,
            message_literal: bool = False) -> Callable[[type], type]:
    """Register a command class under its wire names with the states that allow it."""

    def register(cls: type) -> type:
        for name in names:
            if name in COMMANDS:
                raise RuntimeError(f"IMAP command {name} registered twice")
            COMMANDS[name] = CommandSpec(name, cls, states, uid, not message_literal)
        return cls

    return register


def lookup(name: str, uid: bool = False) -> CommandSpec | None:
    """The registry entry of a command name (upper case), None when unknown (or when it has no
    UID form and ``uid`` is set)."""
    spec = COMMANDS.get(name)
    if spec is None or (uid and not spec.has_uid_form):
        return None
    return spec


@dataclass
class Command:
    """What every command has: its tag, its wire name, and whether it came as ``UID name``."""

    tag: str
    name: str
    uid: bool

    @classmethod
    def parse(cls, r: Reader, tag: str, name: str, uid: bool) -> Command:
        return cls(tag, name, uid)


# --- any state (RFC 3501 §6.1) -----------------------------------------------------------------


@command("CAPABILITY", "NOOP", "LOGOUT", states=ANY)
@command("STARTTLS", states=NOT_AUTHENTICATED)
@command("NAMESPACE", "IDLE", states=AUTHENTICATED)
@command("CHECK", "CLOSE", "UNSELECT", states=SELECTED)
@command("DONE", states=NOWHERE)
@dataclass
class Bare(Command):
    """A command without arguments."""


@command("ID", states=ANY)
@dataclass
class Id(Command):
    """ID (RFC 2971): the client's parameters, or None for NIL."""

    params: dict[str, str | None] | None

    @classmethod
    def parse(cls, r, tag, name, uid):
        r.sp()
        return cls(tag, name, uid, id_params(r))


# --- not authenticated (§6.2) ------------------------------------------------------------------


@command("LOGIN", states=NOT_AUTHENTICATED)
@dataclass
class Login(Command):
    user: str
    password: str

    @classmethod
    def parse(cls, r, tag, name, uid):
        r.sp()
        user = r.astring_text()
        r.sp()
        return cls(tag, name, uid, user, r.astring_text())


@command("AUTHENTICATE", states=NOT_AUTHENTICATED)
@dataclass
class Authenticate(Command):
    mechanism: str
    initial: str | None  # SASL-IR (RFC 4959): base64, or "=" for an empty response

    @classmethod
    def parse(cls, r, tag, name, uid):
        r.sp()
        mechanism = r.atom().upper()
        initial = None
        if r.maybe(b" "):
            initial = r.regex(_BASE64, "base64").decode()
        return cls(tag, name, uid, mechanism, initial)


_BASE64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}")


# --- authenticated (§6.3) ----------------------------------------------------------------------


@command("SELECT", "EXAMINE", states=AUTHENTICATED)
@dataclass
class Select(Command):
    mailbox: str
    params: list[str]
    qresync: QResync | None

    @property
    def readonly(self) -> bool:
        return self.name == "EXAMINE"

    @classmethod
    def parse(cls, r, tag, name, uid):
        r.sp()
        command = cls(tag, name, uid, r.mailbox(), [], None)
        if r.maybe(b" "):
            select_params(r, command)
        return command


@command("DELETE", "SUBSCRIBE", "UNSUBSCRIBE", "GETQUOTAROOT", states=AUTHENTICATED)
@dataclass
class OnMailbox(Command):
    """A command whose one argument is a mailbox name."""

    mailbox: str

    @classmethod
    def parse(cls, r, tag, name, uid):
        r.sp()
        return cls(tag, name, uid, r.mailbox())


@command("CREATE", states=AUTHENTICATED)
@dataclass
class Create(OnMailbox):
    uses: tuple[str, ...] = ()  # CREATE-SPECIAL-USE (RFC 6154 §3)

    @classmethod
    def parse(cls, r, tag, name, uid):
        r.sp()
        command = cls(tag, name, uid, r.mailbox())
        if r.maybe(b" "):
            command.uses = create_uses(r)
        return command


@command("GETQUOTA", "SETQUOTA", states=AUTHENTICATED)
@dataclass
class QuotaRoot(Command):
    """GETQUOTA root / SETQUOTA root (resource limit ...) (RFC 9208 §4.1); SETQUOTA's list is
    read and refused."""

    root: str

    @classmethod
    def parse(cls, r, tag, name, uid):
        r.sp()
        root = r.astring().decode("utf-8", "replace")
        if name == "SETQUOTA":
            r.sp()
            r.skip_list()
        return cls(tag, name, uid, root)


@command("RENAME", states=AUTHENTICATED)
@dataclass
class Rename(Command):
    old: str
    new: str

    @classmethod
    def parse(cls, r, tag, name, uid):
        r.sp()
        old = r.mailbox()
        r.sp()
        return cls(tag, name, uid, old, r.mailbox())


@command("LIST", "LSUB", states=AUTHENTICATED)
@dataclass
class ListFolders(Command):
    """LIST with LIST-EXTENDED's options and pattern lists (RFC 5258), LIST-STATUS (RFC
    5819); LSUB (RFC 3501 §6.3.9) with the base syntax only."""

    args: ListArguments

    @classmethod
    def parse(cls, r, tag, name, uid):
        return cls(tag, name, uid, list_arguments(r, name == "LIST"))


@command("STATUS", states=AUTHENTICATED)
@dataclass
class Status(Command):
    mailbox: str
    items: list[str]

    @classmethod
    def parse(cls, r, tag, name, uid):
        r.sp()
        mailbox = r.mailbox()
        r.sp()
        items = r.atom_list()
        if not items:
            raise ParseError("STATUS needs at least one item")
        return cls(tag, name, uid, mailbox, items)


@dataclass
class AppendMessage:
    """One message of an APPEND: its flags, internal date and literal (or the spooled file the
    server read a large one into, framing.py); ``binary`` when it came as a literal8 (RFC 3516
    §4.4), ``utf8`` when in RFC 6855 §4's ``UTF8 (literal8)`` data extension."""

    flags: list[str]
    date: datetime | None
    message: bytes | IO[bytes]
    message_size: int
    binary: bool = False
    utf8: bool = False


# RFC 3502 §6: a MULTIAPPEND is all or none, so all its messages wait until the last one is
# read; this bounds how many one command may carry (their octets are bounded by framing.py).
MAX_APPEND_MESSAGES = 1000


@command("APPEND", states=AUTHENTICATED, message_literal=True)
@dataclass
class Append(Command):
    """APPEND (RFC 3501 §6.3.11), with several messages in one command: MULTIAPPEND
    (RFC 3502 §6.3.11: mailbox 1*(SP [flag-list SP] [date-time SP] literal))."""

    mailbox: str
    messages: list[AppendMessage]

    @classmethod
    def parse(cls, r, tag, name, uid):
        r.sp()
        mailbox = r.mailbox()
        messages: list[AppendMessage] = []
        r.sp()
        while True:
            if len(messages) >= MAX_APPEND_MESSAGES:
                raise ParseError("too many messages in one APPEND")
            flags: list[str] = []
            date = None
            if r.peek() == b"(":
                flags = r.flag_list()
                r.sp()
            if r.peek() == b'"':
                date = r.date_time()
                r.sp()
            utf8 = r.maybe_ci(b"UTF8")
            if utf8:
                # RFC 6855 §4: append-data =/ "UTF8" SP "(" literal8 ")"
                r.sp()
                r.open_paren()
                if r.peek(2) != b"~{":
                    raise ParseError("UTF8 needs the message as a literal8")
            binary = r.peek(2) == b"~{"
            if not binary and r.peek() != b"{":
                raise ParseError("APPEND needs the message as a literal")
            message = r.literal(binary=True)
            if utf8:
                r.close_paren()
            messages.append(AppendMessage(flags, date, message, len(message), binary, utf8))
            if not r.maybe(b" "):
                break
        return cls(tag, name, uid, mailbox, messages)


@command("COMPRESS", states=AUTHENTICATED)
@dataclass
class Compress(Command):
    """COMPRESS mechanism (RFC 4978 §3)."""

    mechanism: str

    @classmethod
    def parse(cls, r, tag, name, uid):
        r.sp()
        return cls(tag, name, uid, r.atom().upper())


@command("ENABLE", states=AUTHENTICATED)
@dataclass
class Enable(Command):
    caps: list[str]

    @classmethod
    def parse(cls, r, tag, name, uid):
        caps = []
        while r.maybe(b" "):
            caps.append(r.atom().upper())
        if not caps:
            raise ParseError("ENABLE needs a capability")
        return cls(tag, name, uid, caps)


# --- selected (§6.4) ---------------------------------------------------------------------------


@command("EXPUNGE", states=SELECTED, uid=True)
@dataclass
class Expunge(Command):
    set: SequenceSet | None  # UID EXPUNGE only (RFC 4315 §2.1)

    @classmethod
    def parse(cls, r, tag, name, uid):
        if not uid:
            return cls(tag, name, uid, None)
        r.sp()
        return cls(tag, name, uid, r.sequence_set())


@command("SEARCH", states=SELECTED, uid=True)
@dataclass
class Search(Command):
    charset: str | None
    key: k.SearchKey
    returns: list[str] | None = None  # ESEARCH (RFC 4731): None for a plain SEARCH
    # An unsupported CHARSET is answered NO [BADCHARSET] by the handler, not here: a NO to a
    # SEARCH with SAVE empties the saved result, a BAD leaves it (RFC 5182 §2.1).
    bad_charset: str | None = None

    @classmethod
    def parse(cls, r, tag, name, uid):
        r.sp()
        returns = return_options(r)
        charset = bad = None
        if r.maybe_ci(b"CHARSET"):
            r.sp()
            try:
                charset = read_charset(r)
            except BadCharset as error:
                bad = str(error)
            r.sp()
        return cls(tag, name, uid, charset, search_keys(r), returns, bad)


@command("SORT", states=SELECTED, uid=True)
@dataclass
class Sort(Command):
    """SORT (RFC 5256 §3), with ESORT's RETURN options (RFC 5267 §3)."""

    criteria: list[tuple[str, bool]]  # (key, reverse), most significant first
    charset: str
    key: k.SearchKey
    returns: list[str] | None

    @classmethod
    def parse(cls, r, tag, name, uid):
        r.sp()
        returns = return_options(r)
        criteria = sort_criteria(r)
        r.sp()
        charset = read_charset(r)
        r.sp()
        return cls(tag, name, uid, criteria, charset, search_keys(r), returns)


@command("THREAD", states=SELECTED, uid=True)
@dataclass
class Thread(Command):
    """THREAD (RFC 5256 §3)."""

    algorithm: str
    charset: str
    key: k.SearchKey

    @classmethod
    def parse(cls, r, tag, name, uid):
        r.sp()
        algorithm = thread_algorithm(r)
        r.sp()
        charset = read_charset(r)
        r.sp()
        return cls(tag, name, uid, algorithm, charset, search_keys(r))


@command("FETCH", states=SELECTED, uid=True)
@dataclass
class Fetch(Command):
    set: SequenceSet
    atts: list[FetchAtt]
    changedsince: int | None  # RFC 7162 §3.1.4.1
    vanished: bool  # RFC 7162 §3.2.6, UID FETCH only

    @classmethod
    def parse(cls, r, tag, name, uid):
        r.sp()
        seqset = r.sequence_set()
        r.sp()
        command = cls(tag, name, uid, seqset, fetch_atts(r), None, False)
        if r.maybe(b" "):
            r.open_paren()
            while True:
                word = r.atom().upper()
                if word == "CHANGEDSINCE":
                    r.sp()
                    command.changedsince = r.modseq()
                elif word == "VANISHED" and uid:
                    command.vanished = True
                else:
                    raise ParseError(f"unknown FETCH modifier {word}")
                if not r.maybe(b" "):
                    break
            r.close_paren()
            if command.vanished and command.changedsince is None:
                raise ParseError("VANISHED needs CHANGEDSINCE")
        return command


_STORE_ITEM = re.compile(rb"[+-]?FLAGS(\.SILENT)?", re.I)


@command("STORE", states=SELECTED, uid=True)
@dataclass
class Store(Command):
    set: SequenceSet
    unchangedsince: int | None  # RFC 7162 §3.1.3
    mode: str  # add, remove, replace
    silent: bool
    flags: list[str]

    @classmethod
    def parse(cls, r, tag, name, uid):
        r.sp()
        seqset = r.sequence_set()
        r.sp()
        unchangedsince = None
        if r.peek() == b"(":
            # RFC 7162 §3.1.3: the only STORE modifier is UNCHANGEDSINCE.
            r.open_paren()
            if r.atom().upper() != "UNCHANGEDSINCE":
                raise ParseError("unknown STORE modifier")
            r.sp()
            unchangedsince = r.modseq()
            r.close_paren()
            r.sp()
        item = r.regex(_STORE_ITEM, "FLAGS, +FLAGS or -FLAGS").decode().upper()
        mode = {"+": "add", "-": "remove"}.get(item[0], "replace")
        r.sp()
        if r.peek() == b"(":
            flags = r.flag_list()
        else:
            flags = [r.flag()]
            while r.maybe(b" "):
                flags.append(r.flag())
        return cls(tag, name, uid, seqset, unchangedsince, mode, item.endswith(".SILENT"), flags)


@command("COPY", "MOVE", states=SELECTED, uid=True)
@dataclass
class Copy(Command):
    set: SequenceSet
    mailbox: str

    @classmethod
    def parse(cls, r, tag, name, uid):
        r.sp()
        seqset = r.sequence_set()
        r.sp()
        return cls(tag, name, uid, seqset, r.mailbox())


# --- the entry point ---------------------------------------------------------------------------


def command_name(data: bytes) -> tuple[str, str, bool] | None:
    """``(tag, NAME, uid)`` from the start of a command line, None when unreadable: lets the
    server check the state before it accepts a literal (RFC 3501 §6: a command not valid in
    this state is refused, so no ``+`` is sent for it)."""
    tag = parse_tag(data)
    if tag is None:
        return None
    r = Reader(data)
    r.pos = len(tag) + 1
    try:
        name = r.atom().upper()
        uid = False
        if name == "UID" and r.maybe(b" "):
            name, uid = r.atom().upper(), True
    except ParseError:
        return None
    return tag, name, uid


def parse_command(data: bytes, utf8: bool = False) -> Command:
    """Parse one complete command (without its final CRLF). ``utf8``: the session enabled
    UTF8=ACCEPT or IMAP4rev2, so mailbox names are UTF-8, not modified UTF-7 (RFC 6855 §3).
    Raises ParseError (with the tag when one could be read)."""
    tag = parse_tag(data)
    if tag is None:
        raise ParseError("missing or invalid tag")
    r = Reader(data, utf8)
    r.pos = len(tag) + 1
    try:
        name = r.atom().upper()
        uid = False
        if name == "UID":
            r.sp()
            name = r.atom().upper()
            uid = True
            spec = lookup(name, uid=True)
            if spec is None:
                raise ParseError(f"UID {name} is not a command")
        else:
            spec = lookup(name)
            if spec is None:
                raise ParseError(f"unknown command {name}")
        command = spec.cls.parse(r, tag, name, uid)
        r.end()
        return command
    except ParseError as exc:
        exc.tag = tag
        raise
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise ParseError(f"malformed command: {exc}", tag) from None




__all__ = [
    "COMMANDS", "MAX_APPEND_MESSAGES", "MAX_DEPTH", "MAX_MODSEQ", "MAX_NUMBER", "BadCharset", "Command", "FetchAtt",
    "ParseError", "Section", "SequenceSet", "State", "command_name", "decode_mailbox",
    "encode_mailbox", "literal_request", "lookup", "parse_command", "parse_tag",
]
