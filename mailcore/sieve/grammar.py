"""The Sieve grammar (RFC 5228 §8): a lexer and a parser from script text to a tree of
commands, each with its line, its arguments and its tests.

Hand-written and single-pass: every token costs O(its length), nothing backtracks, and nesting
and token counts are capped, so a hostile script costs bounded work. Checking what commands and
arguments mean is ``mailcore.sieve.compile``'s job. Imports nothing from Django."""

from __future__ import annotations

from dataclasses import dataclass, field

# Bounds on any script (the service caps the script's size before this runs).
MAX_NESTING = 32
MAX_TOKENS = 50_000
MAX_STRING_LIST = 1024


class SieveSyntaxError(Exception):
    """A script that does not parse or validate; ``line`` is 1-based (0 when unknown)."""

    def __init__(self, message: str, line: int = 0):
        super().__init__(message)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass(frozen=True)
class Tag:
    name: str  # lower-case, with the colon: ":contains"
    line: int


@dataclass(frozen=True)
class Strings:
    values: tuple[str, ...]
    is_list: bool  # written as [..]: not acceptable where one string is required
    line: int


Argument = Tag | Strings | int


@dataclass
class Node:
    """A command or a test: ``name args* (test | (test-list))? (block | ;)``."""

    name: str
    line: int
    args: list[Argument] = field(default_factory=list)
    tests: list[Node] = field(default_factory=list)
    block: list[Node] | None = None


_SINGLE = set("[](),;{}")
_QUANTIFIERS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
_IDENT_START = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_IDENT_CHARS = _IDENT_START | set("0123456789")


@dataclass
class _Token:
    kind: str  # "ident", "tag", "num", "str", "text" (multi-line), or the character itself
    value: object
    line: int


def tokenize(text: str) -> list[_Token]:
    """RFC 5228 §8.1 lexical tokens. Raises ``SieveSyntaxError``."""
    tokens: list[_Token] = []
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c in " \t\r":
            i += 1
        elif c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif c == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise SieveSyntaxError("unterminated comment", line)
            line += text.count("\n", i, end)
            i = end + 2
        elif c in _SINGLE:
            tokens.append(_Token(c, c, line))
            i += 1
        elif c == '"':
            start_line, i, value = line, i + 1, []
            while True:
                if i >= n:
                    raise SieveSyntaxError("unterminated string", start_line)
                c = text[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\" and i + 1 < n:
                    # RFC 5228 §2.4.2: a backslash quotes the next character, whatever it is.
                    c = text[i + 1]
                    i += 1
                if c == "\n":
                    line += 1
                value.append(c)
                i += 1
            tokens.append(_Token("str", "".join(value), start_line))
        elif c == ":" and i + 1 < n and text[i + 1] in _IDENT_START:
            j = i + 1
            while j < n and text[j] in _IDENT_CHARS:
                j += 1
            tokens.append(_Token("tag", text[i:j].lower(), line))
            i = j
        elif c.isdigit() and c.isascii():
            j = i
            while j < n and text[j].isdigit() and text[j].isascii():
                j += 1
            number = int(text[i:j]) if j - i <= 12 else 1 << 62
            if j < n and text[j].lower() in _QUANTIFIERS:
                number *= _QUANTIFIERS[text[j].lower()]
                j += 1
            tokens.append(_Token("num", number, line))
            i = j
        elif c in _IDENT_START:
            j = i
            while j < n and text[j] in _IDENT_CHARS:
                j += 1
            word = text[i:j].lower()
            if word == "text" and j < n and text[j] == ":":
                i, value_line = j + 1, line
                i, line, value = _multiline(text, i, line)
                tokens.append(_Token("str", value, value_line))
                continue
            tokens.append(_Token("ident", word, line))
            i = j
        else:
            raise SieveSyntaxError(f"unexpected character {c!r}", line)
        if len(tokens) > MAX_TOKENS:
            raise SieveSyntaxError("script too long", line)
    return tokens


def _multiline(text: str, i: int, line: int) -> tuple[int, int, str]:
    """RFC 5228 §2.4.2: ``text:`` (spaces or a comment) CRLF, lines, then ``.`` CRLF; a line
    starting with ``..`` stands for one starting with ``.``."""
    n = len(text)
    while i < n and text[i] in " \t":
        i += 1
    if i < n and text[i] == "#":
        while i < n and text[i] != "\n":
            i += 1
    if i < n and text[i] == "\r":
        i += 1
    if i >= n or text[i] != "\n":
        raise SieveSyntaxError("text: must be followed by a line break", line)
    i += 1
    line += 1
    start_line, lines = line, []
    while True:
        if i >= n:
            raise SieveSyntaxError("unterminated text: block (a line with one dot ends it)",
                                   start_line)
        end = text.find("\n", i)
        end = n if end < 0 else end
        current = text[i:end].rstrip("\r")
        i = end + 1
        line += 1
        if current == ".":
            return i, line, "".join(lines)
        if current.startswith(".."):
            current = current[1:]
        lines.append(current + "\r\n")


class _Parser:
    def __init__(self, tokens: list[_Token]):
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            last = self.tokens[-1].line if self.tokens else 1
            raise SieveSyntaxError("unexpected end of script", last)
        self.pos += 1
        return token

    def expect(self, kind: str) -> _Token:
        token = self.take()
        if token.kind != kind:
            raise SieveSyntaxError(f"expected {kind!r}, found {_describe(token)}", token.line)
        return token

    def commands(self, depth: int, closing: bool) -> list[Node]:
        result = []
        while True:
            token = self.peek()
            if token is None:
                if closing:
                    raise SieveSyntaxError("missing '}'", self.tokens[-1].line)
                return result
            if token.kind == "}":
                if not closing:
                    raise SieveSyntaxError("unexpected '}'", token.line)
                self.take()
                return result
            result.append(self.command(depth))

    def command(self, depth: int) -> Node:
        token = self.expect("ident")
        node = Node(str(token.value), token.line)
        self.arguments(node, depth)
        token = self.take()
        if token.kind == ";":
            return node
        if token.kind == "{":
            if depth >= MAX_NESTING:
                raise SieveSyntaxError("blocks nested too deeply", token.line)
            node.block = self.commands(depth + 1, closing=True)
            return node
        raise SieveSyntaxError(f"expected ';' or '{{' after {node.name}, found "
                               f"{_describe(token)}", token.line)

    def arguments(self, node: Node, depth: int) -> None:
        while (token := self.peek()) is not None:
            if token.kind == "tag":
                self.take()
                node.args.append(Tag(str(token.value), token.line))
            elif token.kind == "num":
                self.take()
                node.args.append(int(token.value))  # type: ignore[arg-type]
            elif token.kind == "str":
                self.take()
                node.args.append(Strings((str(token.value),), False, token.line))
            elif token.kind == "[":
                node.args.append(self.string_list())
            else:
                break
        token = self.peek()
        if token is None:
            return
        if token.kind == "ident":
            node.tests.append(self.test(depth + 1))
        elif token.kind == "(":
            self.take()
            while True:
                node.tests.append(self.test(depth + 1))
                token = self.take()
                if token.kind == ")":
                    break
                if token.kind != ",":
                    raise SieveSyntaxError(f"expected ',' or ')', found {_describe(token)}",
                                           token.line)

    def string_list(self) -> Strings:
        start = self.expect("[")
        values = []
        while True:
            values.append(str(self.expect("str").value))
            if len(values) > MAX_STRING_LIST:
                raise SieveSyntaxError("string list too long", start.line)
            token = self.take()
            if token.kind == "]":
                return Strings(tuple(values), True, start.line)
            if token.kind != ",":
                raise SieveSyntaxError(f"expected ',' or ']', found {_describe(token)}",
                                       token.line)

    def test(self, depth: int) -> Node:
        if depth >= MAX_NESTING:
            raise SieveSyntaxError("tests nested too deeply", self.take().line)
        token = self.expect("ident")
        node = Node(str(token.value), token.line)
        self.arguments(node, depth)
        return node


def _describe(token: _Token) -> str:
    if token.kind in ("ident", "tag"):
        return repr(token.value)
    if token.kind == "str":
        return "a string"
    if token.kind == "num":
        return "a number"
    return repr(token.kind)


def parse(text: str) -> list[Node]:
    """The commands of a script. Raises ``SieveSyntaxError`` with the line of the fault."""
    return _Parser(tokenize(text)).commands(0, closing=False)
