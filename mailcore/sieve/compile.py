"""Checking a parsed Sieve script against what each command and test means (RFC 5228 §2.7,
§3, §4, §5 and the extensions Correio offers), producing :class:`Command` trees the interpreter
runs without re-checking anything.

A script requires every extension it uses (RFC 5228 §3.2); ``require`` comes first; ``elsif``
and ``else`` follow ``if`` (§3.1); tags of one group (comparator, match type, address part) are
given at most once. Every fault is a ``SieveSyntaxError`` with its line. No Django."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mailcore.sieve.grammar import Node, SieveSyntaxError, Strings, Tag, parse

# RFC 5804 §1.7 SIEVE capability: the extensions this interpreter implements. No :regex
# (draft-ietf-sieve-regex): a user's pattern must never cost backtracking time at delivery.
EXTENSIONS = (
    "fileinto", "reject", "ereject", "envelope", "copy", "mailbox", "imap4flags", "body",
    "variables", "relational", "comparator-i;ascii-numeric", "date", "index", "vacation",
    "vacation-seconds", "spamtest", "spamtestplus", "editheader",
)
# Comparators every implementation has (RFC 5228 §2.7.3) and the one needing a require.
COMPARATORS = {"i;octet": None, "i;ascii-casemap": None,
               "i;ascii-numeric": "comparator-i;ascii-numeric"}
RELATIONS = ("gt", "ge", "lt", "le", "eq", "ne")
DATE_PARTS = ("year", "month", "day", "date", "julian", "hour", "minute", "second", "time",
              "iso8601", "std11", "zone", "weekday")
_ZONE = re.compile(r"[+-]\d{4}\Z")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Headers a script may not add or delete (RFC 5293 §4, §6).
PROTECTED_HEADERS = ("received", "auto-submitted")

# A tag: (group it belongs to, the kind of value it takes or None, the extension it needs).
TagSpec = tuple[str, str | None, str | None]
_COMPARATOR: dict[str, TagSpec] = {":comparator": ("comparator", "string", None)}
_MATCH: dict[str, TagSpec] = {
    ":is": ("match", None, None), ":contains": ("match", None, None),
    ":matches": ("match", None, None), ":count": ("match", "string", "relational"),
    ":value": ("match", "string", "relational"),
}
_ADDRESS_PART: dict[str, TagSpec] = {
    ":all": ("part", None, None), ":localpart": ("part", None, None),
    ":domain": ("part", None, None),
}
_INDEX: dict[str, TagSpec] = {":index": ("index", "number", "index"),
                              ":last": ("last", None, "index")}
_MATCHING = {**_COMPARATOR, **_MATCH}


@dataclass(frozen=True)
class Spec:
    kind: str  # "test", "action" or "control"
    positional: tuple[str, ...] = ()  # "string", "strings", "number"; "?" prefix = optional
    tags: dict[str, TagSpec] = field(default_factory=dict)
    extension: str | None = None
    tests: str = "none"  # "none", "one", "list"


SPECS: dict[str, Spec] = {
    # RFC 5228 §3, §4, §5
    "require": Spec("control", ("strings",)),
    "if": Spec("control", tests="one"),
    "elsif": Spec("control", tests="one"),
    "else": Spec("control"),
    "stop": Spec("control"),
    "keep": Spec("action", tags={":flags": ("flags", "strings", "imap4flags")}),
    "discard": Spec("action"),
    "redirect": Spec("action", ("string",), {":copy": ("copy", None, "copy")}),
    "fileinto": Spec("action", ("string",), {
        ":copy": ("copy", None, "copy"), ":create": ("create", None, "mailbox"),
        ":flags": ("flags", "strings", "imap4flags")}, "fileinto"),
    "reject": Spec("action", ("string",), extension="reject"),
    "ereject": Spec("action", ("string",), extension="ereject"),
    "setflag": Spec("action", ("?string", "strings"), extension="imap4flags"),
    "addflag": Spec("action", ("?string", "strings"), extension="imap4flags"),
    "removeflag": Spec("action", ("?string", "strings"), extension="imap4flags"),
    "set": Spec("action", ("string", "string"), {
        ":lower": ("case", None, None), ":upper": ("case", None, None),
        ":lowerfirst": ("first", None, None), ":upperfirst": ("first", None, None),
        ":quotewildcard": ("quote", None, None), ":length": ("length", None, None)},
        "variables"),
    "vacation": Spec("action", ("string",), {
        ":days": ("period", "number", None), ":seconds": ("period", "number", "vacation-seconds"),
        ":subject": ("subject", "string", None), ":from": ("from", "string", None),
        ":addresses": ("addresses", "strings", None), ":mime": ("mime", None, None),
        ":handle": ("handle", "string", None)}, "vacation"),
    "addheader": Spec("action", ("string", "string"), {":last": ("last", None, None)},
                      "editheader"),
    "deleteheader": Spec("action", ("string", "?strings"), {**_MATCHING, **_INDEX},
                         "editheader"),
    "address": Spec("test", ("strings", "strings"), {**_MATCHING, **_ADDRESS_PART, **_INDEX}),
    "envelope": Spec("test", ("strings", "strings"), {**_MATCHING, **_ADDRESS_PART}, "envelope"),
    "header": Spec("test", ("strings", "strings"), {**_MATCHING, **_INDEX}),
    "exists": Spec("test", ("strings",)),
    "size": Spec("test", ("number",), {":over": ("size", None, None),
                                       ":under": ("size", None, None)}),
    "true": Spec("test"),
    "false": Spec("test"),
    "not": Spec("test", tests="one"),
    "anyof": Spec("test", tests="list"),
    "allof": Spec("test", tests="list"),
    "body": Spec("test", ("strings",), {**_MATCHING, ":raw": ("transform", None, None),
                                        ":content": ("transform", "strings", None),
                                        ":text": ("transform", None, None)}, "body"),
    "hasflag": Spec("test", ("?strings", "strings"), _MATCHING, "imap4flags"),
    "string": Spec("test", ("strings", "strings"), _MATCHING, "variables"),
    "date": Spec("test", ("string", "string", "strings"), {
        **_MATCHING, **_INDEX, ":zone": ("zone", "string", None),
        ":originalzone": ("zone", None, None)}, "date"),
    "currentdate": Spec("test", ("string", "strings"), {
        **_MATCHING, ":zone": ("zone", "string", None)}, "date"),
    "spamtest": Spec("test", ("string",), {**_MATCHING,
                                           ":percent": ("percent", None, "spamtestplus")}),
    "mailboxexists": Spec("test", ("strings",), extension="mailbox"),
}


@dataclass
class Command:
    """A checked command or test: tags by name (their value, or True), positional values."""

    name: str
    line: int
    tags: dict[str, object]
    args: list
    tests: list[Command]
    block: list[Command] | None
    match: object = None  # the interpreter's MatchSpec, made once per compiled command


@dataclass
class Script:
    extensions: frozenset[str]
    commands: list[Command]

    def uses(self, extension: str) -> bool:
        return extension in self.extensions


def compile_script(text: str) -> Script:
    """Parse and check a script. Raises ``SieveSyntaxError`` (with a line) for any fault."""
    nodes = parse(text)
    extensions: set[str] = set()
    index = 0
    while index < len(nodes) and nodes[index].name == "require":
        node = nodes[index]
        _check_shape(node, SPECS["require"])
        for name in node.args[0].values:  # type: ignore[union-attr]
            if name not in EXTENSIONS and name not in ("comparator-i;octet",
                                                       "comparator-i;ascii-casemap"):
                raise SieveSyntaxError(f"unsupported extension {name!r}", node.line)
            extensions.add(name)
        index += 1
    if "spamtestplus" in extensions:
        extensions.add("spamtest")  # RFC 5235 §3.2: spamtestplus implies spamtest
    commands = _block(nodes[index:], extensions, top=True)
    return Script(frozenset(extensions), commands)


def _block(nodes: list[Node], extensions: set[str], top: bool = False) -> list[Command]:
    result: list[Command] = []
    previous = ""
    for node in nodes:
        spec = SPECS.get(node.name)
        if spec is None or spec.kind == "test":
            raise SieveSyntaxError(f"unknown command {node.name!r}", node.line)
        if node.name == "require":
            raise SieveSyntaxError("require must come before any other command", node.line)
        if node.name in ("elsif", "else") and previous not in ("if", "elsif"):
            raise SieveSyntaxError(f"{node.name} must follow if or elsif", node.line)
        command = _command(node, spec, extensions)
        if node.name in ("if", "elsif", "else"):
            if node.block is None:
                raise SieveSyntaxError(f"{node.name} needs a block", node.line)
            command.block = _block(node.block, extensions)
        elif node.block is not None:
            raise SieveSyntaxError(f"{node.name} takes no block", node.line)
        result.append(command)
        previous = node.name
    return result


def _test(node: Node, extensions: set[str]) -> Command:
    spec = SPECS.get(node.name)
    if spec is None or spec.kind != "test":
        raise SieveSyntaxError(f"unknown test {node.name!r}", node.line)
    return _command(node, spec, extensions)


def _command(node: Node, spec: Spec, extensions: set[str]) -> Command:
    if spec.extension and spec.extension not in extensions:
        raise SieveSyntaxError(f"{node.name} requires the {spec.extension!r} extension",
                               node.line)
    tags, args = _check_shape(node, spec)
    for tag in tags:
        needed = spec.tags[tag][2]
        if needed and needed not in extensions:
            raise SieveSyntaxError(f"{tag} requires the {needed!r} extension", node.line)
    command = Command(node.name, node.line, tags, args,
                      [_test(t, extensions) for t in node.tests], None)
    _check_values(command, extensions)
    return command


def _check_shape(node: Node, spec: Spec) -> tuple[dict[str, object], list]:
    """Tags into a dict, positional arguments checked against the spec's kinds."""
    tags: dict[str, object] = {}
    groups: set[str] = set()
    positional: list = []
    items = list(node.args)
    i = 0
    while i < len(items):
        item = items[i]
        if isinstance(item, Tag):
            if positional:
                raise SieveSyntaxError(f"tag {item.name} after positional arguments",
                                       item.line)
            tag = spec.tags.get(item.name)
            if tag is None:
                raise SieveSyntaxError(f"{node.name} does not take {item.name}", item.line)
            group, value_kind, _ext = tag
            if group in groups:
                raise SieveSyntaxError(f"{item.name}: conflicting or repeated tag", item.line)
            groups.add(group)
            value: object = True
            if value_kind:
                i += 1
                if i >= len(items) or not _is_kind(items[i], value_kind):
                    raise SieveSyntaxError(f"{item.name} needs a {value_kind} argument",
                                           item.line)
                value = _value(items[i], value_kind)
            tags[item.name] = value
        else:
            positional.append(item)
        i += 1
    kinds = spec.positional
    required = [k for k in kinds if not k.startswith("?")]
    if len(positional) not in (len(required), len(kinds)):
        raise SieveSyntaxError(f"{node.name}: wrong number of arguments", node.line)
    if len(positional) == len(required):
        kinds = tuple(required)
    args = []
    for item, kind in zip(positional, kinds, strict=True):
        kind = kind.lstrip("?")
        if not _is_kind(item, kind):
            raise SieveSyntaxError(f"{node.name}: expected a {kind} argument", node.line)
        args.append(_value(item, kind))
    if len(args) < len(spec.positional):  # an optional argument left out stands as None
        missing = [i for i, k in enumerate(spec.positional) if k.startswith("?")]
        for position in missing:
            args.insert(position, None)
    wanted = {"none": 0, "one": 1}.get(spec.tests)
    if wanted is not None and len(node.tests) != wanted:
        raise SieveSyntaxError(f"{node.name} takes {wanted or 'no'} test", node.line)
    if spec.tests == "list" and not node.tests:
        raise SieveSyntaxError(f"{node.name} needs a list of tests", node.line)
    if node.name == "size" and ":over" not in tags and ":under" not in tags:
        raise SieveSyntaxError("size needs :over or :under", node.line)
    return tags, args


def _is_kind(item, kind: str) -> bool:
    if kind == "number":
        return isinstance(item, int)
    if kind == "string":
        return isinstance(item, Strings) and not item.is_list
    return isinstance(item, Strings)


def _value(item, kind: str):
    if kind == "number":
        return item
    if kind == "string":
        return item.values[0]
    return list(item.values)


def _check_values(command: Command, extensions: set[str]) -> None:
    line, tags = command.line, command.tags
    comparator = tags.get(":comparator")
    if comparator is not None:
        if comparator not in COMPARATORS:
            raise SieveSyntaxError(f"unknown comparator {comparator!r}", line)
        needed = COMPARATORS[str(comparator)]
        if needed and needed not in extensions:
            raise SieveSyntaxError(f"comparator {comparator!r} must be required", line)
    for tag in (":count", ":value"):
        if tag in tags and str(tags[tag]).lower() not in RELATIONS:
            raise SieveSyntaxError(f"{tag} needs one of {', '.join(RELATIONS)}", line)
    if ":last" in tags and ":index" not in tags and command.name != "addheader":
        raise SieveSyntaxError(":last needs :index", line)
    if ":index" in tags and int(tags[":index"]) < 1:  # type: ignore[arg-type]
        raise SieveSyntaxError(":index counts from 1", line)
    if command.name in ("date", "currentdate"):
        part = command.args[-2]
        if part.lower() not in DATE_PARTS:
            raise SieveSyntaxError(f"unknown date part {part!r}", line)
        zone = tags.get(":zone")
        if isinstance(zone, str) and not _ZONE.match(zone):
            raise SieveSyntaxError(f"bad time zone {zone!r} (+hhmm or -hhmm)", line)
    if command.name == "set" and not _VARIABLE_NAME.match(command.args[0]):
        raise SieveSyntaxError(f"bad variable name {command.args[0]!r}", line)
    if command.name in ("addheader", "deleteheader"):
        name = command.args[0]
        if not re.fullmatch(r"[!-9;-~]{1,76}", name) and "${" not in name:
            raise SieveSyntaxError(f"bad header name {name!r}", line)
        if name.lower() in PROTECTED_HEADERS:
            raise SieveSyntaxError(f"the {name} header cannot be changed", line)
    if command.name == "vacation":
        reason = command.args[0]
        if ":mime" in tags and "\n\n" not in reason.replace("\r\n", "\n"):
            raise SieveSyntaxError("vacation :mime needs a MIME part (headers, blank line)",
                                   line)
