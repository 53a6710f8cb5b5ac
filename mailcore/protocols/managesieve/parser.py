"""ManageSieve command syntax (RFC 5804 §4) without I/O: a command line is split into an
atom (the command name) and arguments (quoted strings, literals, numbers). A line ending in a
literal marker ``{N+}`` (or ``{N}``) says N octets follow; the session reads them and the rest
of the command, then calls :func:`tokenize_line` again for the continuation.

Replies are formatted here too: strings are quoted, or sent as literals when they hold line
breaks or are long (RFC 5804 §4 ``string``). No Django."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_ARGUMENTS = 8
_LITERAL_AT_END = re.compile(rb"\{(\d{1,10})(\+?)\}\Z")
_NUMBER = re.compile(rb"\d{1,10}\Z")
_ATOM = re.compile(rb"[A-Za-z]{1,32}\Z")


class ParseError(Exception):
    pass


@dataclass
class Command:
    name: str
    args: list[bytes | int] = field(default_factory=list)


@dataclass
class Partial:
    """What a command has so far: its tokens, and the size of a literal still to read."""

    tokens: list[bytes | int] = field(default_factory=list)
    literal: int | None = None
    name: str = ""


def tokenize_line(line: bytes, partial: Partial) -> Partial:
    """Add the tokens of one line (without CRLF) to ``partial``. Raises ``ParseError``."""
    i, n = 0, len(line)
    if not partial.name:
        while i < n and line[i:i + 1] != b" ":
            i += 1
        atom = line[:i]
        if not _ATOM.match(atom):
            raise ParseError("expected a command name")
        partial.name = atom.decode().upper()
    partial.literal = None
    while i < n:
        c = line[i:i + 1]
        if c == b" ":
            i += 1
            continue
        if len(partial.tokens) >= MAX_ARGUMENTS:
            raise ParseError("too many arguments")
        if c == b'"':
            i += 1
            value = bytearray()
            while True:
                if i >= n:
                    raise ParseError("unterminated quoted string")
                c = line[i:i + 1]
                if c == b"\\":
                    if i + 1 >= n or line[i + 1:i + 2] not in (b"\\", b'"'):
                        raise ParseError("bad escape in quoted string")
                    value += line[i + 1:i + 2]
                    i += 2
                    continue
                if c == b'"':
                    i += 1
                    break
                value += c
                i += 1
            partial.tokens.append(bytes(value))
            continue
        end = line.find(b" ", i)
        end = n if end < 0 else end
        word = line[i:end]
        literal = _LITERAL_AT_END.match(word)
        if literal:
            if end != n:
                raise ParseError("a literal marker must end the line")
            partial.literal = int(literal.group(1))
            return partial
        if _NUMBER.match(word):
            partial.tokens.append(int(word))
        else:
            raise ParseError("expected a string, a literal or a number")
        i = end
    return partial


def finish(partial: Partial) -> Command:
    return Command(partial.name, list(partial.tokens))


def quote(text: str) -> bytes:
    """A reply string: quoted when short and on one line, else a literal."""
    data = text.encode("utf-8")
    if len(data) > 1000 or b"\r" in data or b"\n" in data or b"\0" in data:
        return b"{%d}\r\n" % len(data) + data
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def response(kind: str, code: str | None = None, text: str | None = None) -> bytes:
    """``OK``/``NO``/``BYE`` with an optional response code and human-readable text."""
    out = kind.encode()
    if code:
        out += b" (" + code.encode() + b")"
    if text:
        out += b" " + quote(text)
    return out + b"\r\n"
