"""What a Sieve script decided for one message and one recipient: a typed list of actions
that delivery carries out (RFC 5228 §4; the extensions' actions). No Django."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Keep:
    """Store in INBOX (RFC 5228 §4.3), with IMAP flags (RFC 5232 §5)."""

    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileInto:
    """Store in a folder (RFC 5228 §4.1); ``create`` makes it when missing (RFC 5490 §3)."""

    folder: str
    flags: tuple[str, ...] = ()
    create: bool = False


@dataclass(frozen=True)
class Redirect:
    """Send the message on unchanged to another address (RFC 5228 §4.2)."""

    address: str


@dataclass(frozen=True)
class Reject:
    """Refuse the message with a reason (RFC 5429): at SMTP time when possible, else a
    bounce to the sender. ``extended`` is ereject."""

    reason: str
    extended: bool = False


@dataclass(frozen=True)
class Vacation:
    """An automatic reply to the sender (RFC 5230), at most once per ``period`` seconds."""

    reason: str
    subject: str | None = None
    from_: str | None = None
    addresses: tuple[str, ...] = ()
    period: int = 7 * 86400
    mime: bool = False
    handle: str = ""


@dataclass(frozen=True)
class Discard:
    """Drop the message silently (RFC 5228 §4.4). Recorded so the user can see it happened."""


Action = Keep | FileInto | Redirect | Reject | Vacation | Discard


@dataclass
class Outcome:
    """The result of running a script: the actions, the message to store (``raw``, changed
    when editheader edited it), and the error that made delivery fall back to INBOX."""

    actions: list[Action] = field(default_factory=list)
    raw: bytes = b""
    error: str = ""

    @property
    def rejection(self) -> Reject | None:
        return next((a for a in self.actions if isinstance(a, Reject)), None)
