"""Reading one IMAP command off the wire: a line, and for each line ending in a literal marker
``{n}`` / ``{n+}`` the n octets that follow (RFC 3501 §4.3, RFC 7888 LITERAL+), under budgets
that hold before and after login (issue 12, ARCHITECTURE.md "Bounded work").

Order of checks for a literal, all before the ``+`` continuation is sent (RFC 3501 §7.5 lets
the server answer a synchronizing literal with a tagged response instead, and the client then
abandons the command):

1. the command must exist and be valid in the session's state (the parser's registry), so a
   client that has not logged in cannot make the server read an APPEND literal;
2. the literal's size: before login only small ones (LOGIN and AUTHENTICATE arguments); after
   login at most ``max_literal`` but for APPEND's message (the message size limit);
3. the command's running total (every literal of a command counts, APPEND's included);
4. for APPEND's message, the mailbox quota (``NO [OVERQUOTA]`` rather than reading it).

A refused non-synchronizing literal is already on its way: it is read and dropped when it is
within the budget, else the connection ends with ``BYE``. APPEND's message is spooled to a
temporary file past a threshold, so a slow or large upload holds no more than that in memory.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from dataclasses import dataclass
from typing import IO

from mailcore import exceptions as exc
from mailcore.protocols.common.services import call_service
from mailcore.protocols.imap.parser import State, command_name, literal_request, lookup, parse_tag
from mailcore.services import quota

READ_CHUNK = 64 * 1024
_MARKER = re.compile(rb"\{\d+\+?\}(\r?\n)\Z")


class Closed(Exception):
    """The client went away, or the connection must end now."""


@dataclass
class Framed:
    """One command as read: its bytes without the final CRLF and, for APPEND, the message
    literal spooled apart (the bytes then hold an empty literal ``{0}`` in its place)."""

    data: bytes
    message: IO[bytes] | None = None
    message_size: int = 0

    def close(self) -> None:
        if self.message is not None:
            self.message.close()
            self.message = None


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
        command in the current state."""
        options = self.options
        if self.state is State.NOT_AUTHENTICATED:
            small = min(options.max_literal, options.preauth_literal)
            return small, 0, options.preauth_command
        if spec is not None and not spec.small_literals:
            size = self.config.max_message_size
            return options.max_literal, size, options.max_command + size
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
        total = 0
        try:
            while request is not None:
                size, nonsync = request
                total += size
                try:
                    is_message = await self._check_literal(
                        spec, head, size, total, max_literal, max_message, budget, framed
                    )
                except _Refused as refused:
                    await self._refuse(tag, size, nonsync, total, budget, refused)
                    framed.close()
                    return None
                if not nonsync:
                    self.send("+ Ready for literal data\r\n")
                    await self.flush()
                if is_message:
                    framed.message = await self._spool(size)
                    framed.message_size = size
                    chunks[-1] = _MARKER.sub(rb"{0}\1", chunks[-1])
                else:
                    chunks.append(await self._read_exactly(size))
                line = await self.read_line()
                chunks.append(line)
                request = literal_request(line)
                if request is not None and framed.message is not None:
                    # The message is APPEND's last argument (RFC 3501 §6.3.11, no MULTIAPPEND).
                    refused = _Refused("BAD", "Nothing may follow the message")
                    await self._refuse(tag, request[0], request[1], total + request[0], budget,
                                       refused)
                    framed.close()
                    return None
        except BaseException:
            framed.close()
            raise
        framed.data = _strip(b"".join(chunks))
        return framed

    async def _check_literal(self, spec, head, size, total, max_literal, max_message, budget,
                             framed) -> bool:
        """Raise _Refused when the literal may not be read; return whether it is APPEND's
        message (to be spooled)."""
        if spec is None:
            name = f"{'UID ' if head and head[2] else ''}{head[1]}" if head else "command"
            raise _Refused("BAD", f"Unknown {name}")
        if self.state not in spec.states:
            raise _Refused("BAD", f"{spec.name} is not allowed in the {self.state.value} state")
        is_message = max_message > 0 and size > max_literal and framed.message is None
        if is_message and size > max_message:
            raise _Refused("NO", "[TOOBIG] Message exceeds the size limit")
        if not is_message and size > max_literal:
            raise _Refused("NO", "[TOOBIG] Literal too large")
        if total > budget:
            raise _Refused("NO", "[TOOBIG] Command too large")
        if max_message and size:
            try:
                await call_service(quota.check_fits, self.mailbox.pk, size)
            except exc.QuotaExceeded:
                raise _Refused("NO", "[OVERQUOTA] Mailbox is over quota") from None
        return is_message

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

    async def _spool(self, size: int) -> IO[bytes]:
        """Read APPEND's message into a file that stays in memory up to the spool threshold."""
        spool = tempfile.SpooledTemporaryFile(max_size=self.options.spool_threshold)
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
