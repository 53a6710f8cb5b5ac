"""Reading one IMAP command off the wire: a line, and for each line ending in a literal marker
``{n}`` / ``{n+}`` the n octets that follow (RFC 3501 §4.3, RFC 7888 LITERAL+), under budgets
that hold before and after login (issue 12, ARCHITECTURE.md "Bounded work").

Order of checks for a literal, all before the ``+`` continuation is sent (RFC 3501 §7.5 lets
the server answer a synchronizing literal with a tagged response instead, and the client then
abandons the command):

1. the command must exist and be valid in the session's state (the parser's registry), so a
   client that has not logged in cannot make the server read an APPEND literal;
2. the literal's size: before login only small ones (LOGIN and AUTHENTICATE arguments); after
   login at most ``max_literal`` but for APPEND's messages (the message size limit);
3. the command's running total (its lines and every literal count, APPEND's messages
   included: MULTIAPPEND, RFC 3502, carries several in one command);
4. for APPEND's messages, the mailbox quota for all of them so far (``NO [OVERQUOTA]`` rather
   than reading them).

A refused non-synchronizing literal is already on its way: it is read and dropped when it is
within the budget, else the connection ends with ``BYE``. APPEND's messages are spooled apart:
in memory up to one threshold per command, then in temporary files, so a slow or large upload
(or a MULTIAPPEND of many small messages) holds no more than that in memory.
"""

from __future__ import annotations

import asyncio
import io
import re
import tempfile
from dataclasses import dataclass, field
from typing import IO

from mailcore.protocols.common.services import call_service
from mailcore.protocols.imap.parser import (
    MAX_APPEND_MESSAGES,
    State,
    command_name,
    literal_request,
    lookup,
    parse_tag,
)
from mailcore.services import quota

READ_CHUNK = 64 * 1024
_MARKER = re.compile(rb"\{\d+\+?\}(\r?\n)\Z")


class Closed(Exception):
    """The client went away, or the connection must end now."""


@dataclass
class Framed:
    """One command as read: its bytes without the final CRLF and, for APPEND, the message
    literals spooled apart, in order (the bytes then hold an empty literal ``{0}`` in place of
    each)."""

    data: bytes
    messages: list[tuple[IO[bytes], int]] = field(default_factory=list)

    def close(self) -> None:
        for spool, _size in self.messages:
            spool.close()
        self.messages = []


class _Refused(Exception):
    def __init__(self, status: str, text: str):
        super().__init__(text)
        self.status = status
        self.text = text


class Framing:
    """Mixed into the connection class, which provides ``reader``, ``read_line``,
    ``read_timeout``, ``send``, ``flush``, ``bad``, ``state``, ``mailbox``, ``options`` and
    ``config``."""

    def literal_budget(self, spec) -> tuple[int, int, int]:
        """(largest literal, largest APPEND message, total octets of all literals) for a
        command in the current state. The total counts the command's lines too, and for
        APPEND all its messages (MULTIAPPEND, RFC 3502)."""
        options = self.options
        if self.state is State.NOT_AUTHENTICATED:
            small = min(options.max_literal, options.preauth_literal)
            return small, 0, options.preauth_command
        if spec is not None and not spec.small_literals:
            size = self.config.max_message_size
            return options.max_literal, size, options.max_command + max(
                size, options.max_append_total)
        return options.max_literal, 0, options.max_command

    async def read_command(self) -> Framed | None:
        """One command with its literals; None when a literal was refused (the reply is sent)."""
        line = await self.read_line()
        request = literal_request(line)
        if request is None:
            return Framed(_strip(line))
        head = command_name(line)
        tag = head[0] if head else (parse_tag(line) or "*")
        spec = lookup(head[1], head[2]) if head else None
        max_literal, max_message, budget = self.literal_budget(spec)
        chunks = [line]
        framed = Framed(b"")
        # What this command holds in memory (lines and inline literals), what it has spooled,
        # and its message octets (for the quota): each bounded.
        held, total, messages, in_memory = len(line), len(line), 0, 0
        usage = None  # the mailbox's (quota, used), read at the command's first message
        try:
            while request is not None:
                size, nonsync = request
                total += size
                try:
                    is_message = await self._check_literal(
                        spec, head, size, total, max_literal, max_message, budget, held,
                        len(framed.messages),
                    )
                    if is_message is not None and size:
                        messages += size
                        if usage is None:
                            usage = await call_service(quota.usage, self.mailbox.pk)
                        if quota.exceeds(usage.limit, usage.used + messages):
                            raise _Refused("NO", "[OVERQUOTA] Mailbox is over quota")
                except _Refused as refused:
                    await self._refuse(tag, size, nonsync, total, budget, refused)
                    framed.close()
                    return None
                if not nonsync:
                    self.send("+ Ready for literal data\r\n")
                    await self.flush()
                if is_message:
                    # Spooled messages share one memory allowance; past it they wait on disk.
                    to_memory = in_memory + size <= self.options.spool_threshold
                    in_memory += size if to_memory else 0
                    framed.messages.append((await self._spool(size, to_memory), size))
                    chunks[-1] = _MARKER.sub(rb"{0}\1", chunks[-1])
                else:
                    chunks.append(await self._read_exactly(size))
                    held += size
                line = await self.read_line()
                chunks.append(line)
                held += len(line)
                total += len(line)
                request = literal_request(line)
        except BaseException:
            framed.close()
            raise
        framed.data = _strip(b"".join(chunks))
        return framed

    async def _check_literal(self, spec, head, size, total, max_literal, max_message, budget,
                             held, spooled) -> bool | None:
        """Raise _Refused when the literal may not be read; return None for an ordinary
        literal, else whether it is an APPEND message to be spooled (True) or kept inline."""
        if spec is None:
            name = f"{'UID ' if head and head[2] else ''}{head[1]}" if head else "command"
            raise _Refused("BAD", f"Unknown {name}")
        if self.state not in spec.states:
            raise _Refused("BAD", f"{spec.name} is not allowed in the {self.state.value} state")
        if not max_message:
            if size > max_literal:
                raise _Refused("NO", "[TOOBIG] Literal too large")
            if total > budget:
                raise _Refused("NO", "[TOOBIG] Command too large")
            return None
        if size > max_message:
            raise _Refused("NO", "[TOOBIG] Message exceeds the size limit")
        if total > budget:
            raise _Refused("NO", "[TOOBIG] Command too large")
        # A large message, or one that would take the octets held in memory past the command
        # limit, waits in a spool file; a MULTIAPPEND of many small ones spools them too.
        spool = size > max_literal or held + size > self.options.max_command
        if spool and spooled >= MAX_APPEND_MESSAGES:
            raise _Refused("NO", "[LIMIT] Too many messages in one APPEND")
        return spool

    async def _refuse(self, tag: str, size: int, nonsync: bool, total: int, budget: int,
                      refused: _Refused) -> None:
        if nonsync:
            # RFC 7888 §4: the client sends a non-synchronizing literal without waiting. Too
            # large, or beyond the command's budget, it cannot be skipped safely: say why and
            # close. Otherwise it is read and dropped (with the rest of the command), and the
            # session goes on.
            if refused.text.startswith("[TOOBIG]") or total > budget:
                self.send(f"* BYE {_bye_text(refused)}\r\n")
                raise Closed()
            await self._discard(size)
            while (request := literal_request(await self.read_line())) is not None:
                size, nonsync = request
                total += size
                if not nonsync:
                    break  # the client waits for a "+" that will not come: the reply ends it
                if total > budget:
                    self.send("* BYE [TOOBIG] Command too large\r\n")
                    raise Closed()
                await self._discard(size)
        if refused.status == "BAD":
            self.bad(tag, refused.text)
        else:
            self.send(f"{tag} {refused.status} {refused.text}\r\n")

    async def _read_exactly(self, size: int) -> bytes:
        try:
            return await asyncio.wait_for(self.reader.readexactly(size), self.read_timeout())
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            raise Closed() from None

    async def _discard(self, size: int) -> None:
        while size > 0:
            chunk = await self._read_some(min(size, READ_CHUNK))
            size -= len(chunk)

    async def _read_some(self, size: int) -> bytes:
        try:
            chunk = await asyncio.wait_for(self.reader.read(size), self.read_timeout())
        except (TimeoutError, ConnectionError):
            raise Closed() from None
        if not chunk:
            raise Closed()
        return chunk

    async def _spool(self, size: int, to_memory: bool) -> IO[bytes]:
        """Read an APPEND message into memory or, past the command's allowance, a temporary
        file, so a slow or large upload holds no more than the allowance in memory."""
        spool: IO[bytes] = io.BytesIO() if to_memory else tempfile.TemporaryFile()
        try:
            remaining = size
            while remaining > 0:
                chunk = await self._read_some(min(remaining, READ_CHUNK))
                spool.write(chunk)
                remaining -= len(chunk)
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return spool


def _strip(data: bytes) -> bytes:
    if data.endswith(b"\r\n"):
        return data[:-2]
    return data[:-1] if data.endswith(b"\n") else data


def _bye_text(refused: _Refused) -> str:
    if refused.text.startswith("[TOOBIG]"):
        return "[TOOBIG] Literal too large"
    return refused.text
