"""Running a checked Sieve script against one message for one recipient (RFC 5228 and the
extensions listed in ``compile.EXTENSIONS``): the result is a typed list of actions
(``mailcore.sieve.actions``) that delivery carries out; the interpreter itself changes nothing.

Bounded work: every command, test and comparison spends from a step budget, variables have a
length cap (RFC 5229 §3 allows truncation), and any fault raises ``SieveRuntimeError``, upon
which the caller keeps the message in INBOX (RFC 5228 §2.10.6). No Django."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

from mailcore.sieve.actions import (
    Action,
    Discard,
    FileInto,
    Keep,
    Outcome,
    Redirect,
    Reject,
    Vacation,
)
from mailcore.sieve.compile import Command, Script
from mailcore.sieve.match import MatchSpec, match_values
from mailcore.sieve.message import SieveMessage

MAX_STEPS = 20_000
MAX_VARIABLE_LENGTH = 4000
MAX_VARIABLES = 256
MAX_REDIRECTS = 4  # RFC 5228 §4.2: implementations limit the number of redirects
MAX_ACTIONS = 64
# Vacation periods (RFC 5230 §4.1, RFC 6131 §2): default 7 days, capped to 90 days.
DEFAULT_VACATION_DAYS = 7
MAX_VACATION_SECONDS = 90 * 86400
# A score at or above the engine's reject threshold maps to spamtest 10 / 100 percent; this one
# when the threshold is not known.
SPAM_SCORE_MAX = 15.0
# An IMAP flag: an atom (RFC 3501 §9 atom-char), with an optional leading backslash.
_FLAG = re.compile(r"\\?[!#$&'+,\-./0-9:;<=>?@A-Z\[^_`a-z|}~]{1,64}\Z")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*|[0-9]+)\}")


class SieveRuntimeError(Exception):
    def __init__(self, message: str, line: int = 0):
        super().__init__(f"line {line}: {message}" if line else message)


@dataclass
class Envelope:
    mail_from: str  # "" for the null sender
    to: str  # the envelope recipient this script runs for


@dataclass
class Environment:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    mailbox_exists: Callable[[str], bool] = lambda name: name.upper() == "INBOX"
    # The spam verdict, asked only when a script tests it: (score, reject threshold or None),
    # or None when the message was not tested.
    spam: Callable[[], tuple[float, float | None] | None] = lambda: None


class _Stop(Exception):
    pass


class Run:
    def __init__(self, script: Script, message: SieveMessage, envelope: Envelope,
                 env: Environment):
        self.script = script
        self.message = message
        self.envelope = envelope
        self.env = env
        self.variables: dict[str, str] = {}
        self.match_vars: list[str] = []
        self.flags: list[str] = []  # the imap4flags internal variable (RFC 5232 §3)
        self.actions: list[Action] = []
        self.implicit_keep = True
        self.steps = 0
        self.expand = script.uses("variables")

    def spend(self, steps: int = 1, line: int = 0) -> None:
        self.steps += steps
        if self.steps > MAX_STEPS:
            raise SieveRuntimeError("the script used too much work", line)

    # --- strings ------------------------------------------------------------------------

    def s(self, value: str) -> str:
        """RFC 5229 §3: ${name} and ${N} expanded when variables is required."""
        if not self.expand or "${" not in value:
            return value
        def sub(m: re.Match) -> str:
            name = m.group(1)
            if name.isdigit():
                index = int(name)
                return self.match_vars[index] if index < len(self.match_vars) else ""
            return self.variables.get(name.lower(), "")
        return _VARIABLE.sub(sub, value)[:MAX_VARIABLE_LENGTH * 4]

    def sl(self, values: list[str]) -> list[str]:
        return [self.s(v) for v in values] if self.expand else values

    # --- execution ----------------------------------------------------------------------

    def run(self) -> list[Action]:
        try:
            self.block(self.script.commands)
        except _Stop:
            pass
        self._check_conflicts()
        if self.implicit_keep:
            self.actions.insert(0, Keep(tuple(self.flags)))
        return _dedupe(self.actions)

    def block(self, commands: list[Command]) -> None:
        branch_taken = False
        for command in commands:
            self.spend(1, command.line)
            name = command.name
            if name == "if":
                branch_taken = self.test(command.tests[0])
                if branch_taken:
                    self.block(command.block or [])
            elif name == "elsif":
                if not branch_taken:
                    branch_taken = self.test(command.tests[0])
                    if branch_taken:
                        self.block(command.block or [])
            elif name == "else":
                if not branch_taken:
                    self.block(command.block or [])
                branch_taken = True
            else:
                self.action(command)

    def add(self, action: Action, line: int) -> None:
        if len(self.actions) >= MAX_ACTIONS:
            raise SieveRuntimeError("too many actions", line)
        self.actions.append(action)

    def action(self, c: Command) -> None:
        name, tags, line = c.name, c.tags, c.line
        if name == "stop":
            raise _Stop()
        if name == "keep":
            self.implicit_keep = False
            self.add(Keep(self._flags(tags)), line)
        elif name == "discard":
            self.implicit_keep = False
            self.add(Discard(), line)
        elif name == "fileinto":
            if ":copy" not in tags:
                self.implicit_keep = False
            folder = self.s(c.args[0])
            if not folder or len(folder) > 500:
                raise SieveRuntimeError(f"bad folder name {folder!r}", line)
            self.add(FileInto(folder, self._flags(tags), ":create" in tags), line)
        elif name == "redirect":
            if ":copy" not in tags:
                self.implicit_keep = False
            address = self.s(c.args[0]).strip()
            if not re.fullmatch(r"[^\s@<>()\[\],;:\\\"]{1,64}@[A-Za-z0-9.-]{1,253}", address):
                raise SieveRuntimeError(f"bad redirect address {address!r}", line)
            if sum(isinstance(a, Redirect) for a in self.actions) >= MAX_REDIRECTS:
                raise SieveRuntimeError("too many redirects", line)
            self.add(Redirect(address), line)
        elif name in ("reject", "ereject"):
            if any(isinstance(a, Reject) for a in self.actions):
                raise SieveRuntimeError("reject used twice", line)
            self.implicit_keep = False
            self.add(Reject(self.s(c.args[0]), extended=name == "ereject"), line)
        elif name in ("setflag", "addflag", "removeflag"):
            self._flag_action(c)
        elif name == "set":
            self._set(c)
        elif name == "vacation":
            self._vacation(c)
        elif name == "addheader":
            self.message.add_header(self.s(c.args[0]), self.s(c.args[1]), ":last" in tags)
        elif name == "deleteheader":
            self._deleteheader(c)
        else:  # compile_script admits nothing else
            raise SieveRuntimeError(f"unknown command {name}", line)

    def _check_conflicts(self) -> None:
        """RFC 5429 §2.1/§2.2: reject is incompatible with keep, fileinto and vacation."""
        if any(isinstance(a, Reject) for a in self.actions):
            if any(isinstance(a, Keep | FileInto | Vacation) for a in self.actions):
                raise SieveRuntimeError("reject cannot be combined with keep, fileinto or "
                                        "vacation")

    # --- imap4flags (RFC 5232) ----------------------------------------------------------

    @staticmethod
    def _split_flags(values: list[str]) -> list[str]:
        """RFC 5232 §3: flags are IMAP flag names; anything else (which a variable filled
        from a header could hold) is dropped, so it never reaches an IMAP response."""
        result: list[str] = []
        for value in values:
            for flag in value.split():
                if _FLAG.match(flag) and flag.lower() not in (f.lower() for f in result):
                    result.append(flag)
        return result[:64]

    def _flags(self, tags: dict) -> tuple[str, ...]:
        if ":flags" in tags:
            return tuple(self._split_flags(self.sl(tags[":flags"])))
        return tuple(self.flags)

    def _flag_action(self, c: Command) -> None:
        variable, values = c.args
        flags = self._split_flags(self.sl(values))
        current = self._split_flags([self.variables.get(variable.lower(), "")]) \
            if variable else self.flags
        lowered = {f.lower() for f in flags}
        if c.name == "setflag":
            current = flags
        elif c.name == "addflag":
            current = self._split_flags([*current, *flags])
        else:
            current = [f for f in current if f.lower() not in lowered]
        if variable:
            self._store_variable(variable, " ".join(current), c.line)
        else:
            self.flags = current

    # --- variables (RFC 5229) -----------------------------------------------------------

    def _store_variable(self, name: str, value: str, line: int) -> None:
        name = name.lower()
        if name not in self.variables and len(self.variables) >= MAX_VARIABLES:
            raise SieveRuntimeError("too many variables", line)
        self.variables[name] = value[:MAX_VARIABLE_LENGTH]

    def _set(self, c: Command) -> None:
        value = self.s(c.args[1])
        tags = c.tags
        # RFC 5229 §4.1: modifiers apply from the highest precedence (40) to the lowest (10).
        if ":lower" in tags:
            value = value.lower()
        if ":upper" in tags:
            value = value.upper()
        if ":lowerfirst" in tags:
            value = value[:1].lower() + value[1:]
        if ":upperfirst" in tags:
            value = value[:1].upper() + value[1:]
        if ":quotewildcard" in tags:
            value = re.sub(r"([*?\\])", r"\\\1", value)
        if ":length" in tags:
            value = str(len(value))
        self._store_variable(c.args[0], value, c.line)

    # --- vacation (RFC 5230, RFC 6131) --------------------------------------------------

    def _vacation(self, c: Command) -> None:
        if any(isinstance(a, Vacation) for a in self.actions):
            raise SieveRuntimeError("vacation used twice", c.line)
        tags = c.tags
        if ":seconds" in tags:
            period = int(tags[":seconds"])  # type: ignore[arg-type]
        else:
            period = int(tags.get(":days", DEFAULT_VACATION_DAYS)) * 86400  # type: ignore
            period = max(period, 86400)  # RFC 5230 §4.1: :days 0 is not allowed; 1 minimum
        period = min(period, MAX_VACATION_SECONDS)
        subject = tags.get(":subject")
        from_ = tags.get(":from")
        self.add(Vacation(
            reason=self.s(c.args[0]),
            subject=self.s(str(subject)) if subject is not None else None,
            from_=self.s(str(from_)) if from_ is not None else None,
            addresses=tuple(self.sl(list(tags.get(":addresses", [])))),  # type: ignore
            period=period,
            mime=":mime" in tags,
            handle=self.s(str(tags.get(":handle", ""))),
        ), c.line)

    def _deleteheader(self, c: Command) -> None:
        name = self.s(c.args[0])
        if name.lower() in ("received", "auto-submitted"):
            raise SieveRuntimeError(f"the {name} header cannot be deleted", c.line)
        keys = self.sl(c.args[1]) if c.args[1] is not None else None
        spec = MatchSpec.from_tags(c.tags)
        total = self.message.count(name)
        wanted_index = c.tags.get(":index")
        if wanted_index is not None and ":last" in c.tags:
            wanted_index = total - int(wanted_index) + 1  # type: ignore[arg-type]

        def keep(index: int, value: str) -> bool:
            if wanted_index is not None and index != wanted_index:
                return True
            if keys is None:
                return False
            self.spend(len(keys), c.line)
            return not match_values(spec, [value], keys)[0]

        self.message.delete_headers(name, keep)

    # --- tests --------------------------------------------------------------------------

    def test(self, t: Command) -> bool:
        self.spend(1, t.line)
        name = t.name
        if name == "true":
            return True
        if name == "false":
            return False
        if name == "not":
            return not self.test(t.tests[0])
        if name == "anyof":
            return any(self.test(x) for x in t.tests)
        if name == "allof":
            return all(self.test(x) for x in t.tests)
        if name == "exists":
            return all(self.message.count(h) for h in self.sl(t.args[0]))
        if name == "size":
            limit = t.args[0]
            return self.message.size > limit if ":over" in t.tags else self.message.size < limit
        if name == "mailboxexists":
            return all(self.env.mailbox_exists(m) for m in self.sl(t.args[0]))
        values = self._values(t)
        last = t.args[-1]  # a string list, or one string (spamtest's value, RFC 5235 §3.1)
        keys = self.sl([last] if isinstance(last, str) else last)
        # Comparing costs in proportion to the text compared, times the keys (a 1 MB body
        # against many keys must run out of budget, not hold a delivery thread).
        size = sum(len(v) for v in values)
        self.spend(len(values) * max(len(keys), 1) + size * len(keys) // 4096 + 1, t.line)
        spec = t.match
        if spec is None:
            spec = t.match = MatchSpec.from_tags(t.tags)
        if spec.kind == "count" and name == "string":
            values = [v for v in values if v]  # RFC 5229 §5: empty strings are not counted
        matched, captures = match_values(spec, values, keys)
        if matched and spec.kind == "matches" and self.expand:
            self.match_vars = captures  # RFC 5229 §3.2: only a successful :matches sets them
        return matched

    def _indexed(self, values: list, tags: dict) -> list:
        """RFC 5260 §6: :index N (from the end with :last) picks one occurrence."""
        index = tags.get(":index")
        if index is None:
            return values
        position = len(values) - int(index) if ":last" in tags else int(index) - 1
        return [values[position]] if 0 <= position < len(values) else []

    def _values(self, t: Command) -> list[str]:
        name, tags = t.name, t.tags
        if name == "header":
            values: list[str] = []
            for header in self.sl(t.args[0]):
                values.extend(self._indexed(self.message.header_values(header), tags))
            return values
        if name in ("address", "envelope"):
            addresses: list[str] = []
            for header in self.sl(t.args[0]):
                if name == "address":
                    addresses.extend(self._indexed(self.message.addresses(header), tags))
                elif header.lower() == "from":
                    addresses.append(self.envelope.mail_from)
                elif header.lower() == "to":
                    addresses.append(self.envelope.to)
            return [_address_part(a, tags) for a in addresses]
        if name == "body":
            transform = tags.get(":content", ":raw" if ":raw" in tags else ":text")
            return self.message.body_values(transform)
        if name == "hasflag":
            if t.args[0] is None:
                return list(self.flags)
            return self._split_flags([self.variables.get(v.lower(), "")
                                      for v in self.sl(t.args[0])])
        if name == "string":
            return self.sl(t.args[0])
        if name == "date":
            dates = self._indexed(self.message.date(self.s(t.args[0])), tags)
            return [_date_part(d, self.s(t.args[1]), tags) for d in dates if d is not None]
        if name == "currentdate":
            return [_date_part(self.env.now, self.s(t.args[0]), tags)]
        if name == "spamtest":
            return [self._spam(":percent" in tags)]
        raise SieveRuntimeError(f"unknown test {name}", t.line)

    def _spam(self, percent: bool) -> str:
        """RFC 5235 §3.1/§3.2: "0" when untested, else 1 (clearly not spam) .. 10 (the
        engine's reject threshold or above), or 0..100 with :percent, scaled linearly."""
        verdict = self.env.spam()
        if verdict is None:
            return "0"
        score, required = verdict
        ratio = min(max(score / (required if required and required > 0 else SPAM_SCORE_MAX),
                        0.0), 1.0)
        if percent:
            return str(round(ratio * 100))
        return str(1 + round(ratio * 9))


def _address_part(address: str, tags: dict) -> str:
    local, at, domain = address.rpartition("@")
    if not at:
        local, domain = address, ""
    if ":localpart" in tags:
        return local
    if ":domain" in tags:
        return domain
    return address


_DATE_FORMATS = {"year": "%Y", "month": "%m", "day": "%d", "date": "%Y-%m-%d", "hour": "%H",
                 "minute": "%M", "second": "%S", "time": "%H:%M:%S"}


def _date_part(when: datetime, part: str, tags: dict) -> str:
    """RFC 5260 §4.2 date parts, in the zone asked for (§4.1: :zone, :originalzone, or by
    default the local zone, taken here as UTC)."""
    zone = tags.get(":zone")
    if isinstance(zone, str):
        sign = -1 if zone[0] == "-" else 1
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5])) * sign
        when = when.astimezone(timezone(offset))
    elif ":originalzone" not in tags:
        when = when.astimezone(UTC)
    part = part.lower()
    offset = when.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    zone_text = f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
    if part == "julian":  # the Modified Julian Day
        return str((when.date() - datetime(1858, 11, 17).date()).days)
    if part == "iso8601":
        return f"{when:%Y-%m-%dT%H:%M:%S}{zone_text[:3]}:{zone_text[3:]}"
    if part == "std11":
        return when.strftime("%a, %d %b %Y %H:%M:%S ") + zone_text
    if part == "zone":
        return zone_text
    if part == "weekday":
        return str((when.weekday() + 1) % 7)  # 0 is Sunday
    return when.strftime(_DATE_FORMATS[part])


def _dedupe(actions: list[Action]) -> list[Action]:
    """RFC 5228 §2.10.3: the same delivery twice is done once (keep and fileinto "INBOX"
    are the same; flags of both are merged)."""
    result: list[Action] = []
    targets: dict[str, int] = {}
    for action in actions:
        if isinstance(action, Keep | FileInto):
            folder = "INBOX" if isinstance(action, Keep) or action.folder.upper() == "INBOX" \
                else action.folder
            if folder in targets:
                previous = result[targets[folder]]
                flags = tuple(dict.fromkeys([*previous.flags, *action.flags]))  # type: ignore
                result[targets[folder]] = (Keep(flags) if isinstance(previous, Keep)
                                           else FileInto(previous.folder, flags,
                                                         previous.create))  # type: ignore
                continue
            targets[folder] = len(result)
        elif isinstance(action, Redirect | Discard) and action in result:
            continue
        result.append(action)
    return result


def run_script(script: Script, raw: bytes, envelope: Envelope,
               env: Environment | None = None) -> Outcome:
    """Run ``script``; on any fault the outcome is a plain keep in INBOX with the error
    (RFC 5228 §2.10.6), never an exception."""
    message = SieveMessage(raw)
    try:
        actions = Run(script, message, envelope, env or Environment()).run()
    except SieveRuntimeError as error:
        return Outcome([Keep()], raw, str(error))
    except RecursionError:
        return Outcome([Keep()], raw, "the script nests too deeply")
    return Outcome(actions, message.to_bytes())
