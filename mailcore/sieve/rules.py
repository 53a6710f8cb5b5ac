"""The webmail's simple rules as Sieve: typed rules ("if From contains x, move to F") and a
vacation responder in, a script out; and back again from the data line the script carries
(the way Roundcube's managesieve plugin marks the scripts it writes). No Django."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date

DATA_PREFIX = "# correio-rules: "
FIELDS = {"from": ["from"], "to": ["to", "cc"], "subject": ["subject"], "list": ["list-id"]}
ACTIONS = ("move", "read", "flag", "forward", "delete")
MAX_RULES = 100


@dataclass
class Rule:
    field: str  # a key of FIELDS
    contains: str
    action: str  # one of ACTIONS
    target: str = ""  # folder (move) or address (forward)


@dataclass
class VacationSettings:
    enabled: bool = False
    start: str = ""  # ISO dates, inclusive; empty = open
    end: str = ""
    subject: str = ""
    message: str = ""
    days: int = 7


@dataclass
class RuleSet:
    rules: list[Rule] = field(default_factory=list)
    vacation: VacationSettings = field(default_factory=VacationSettings)


def sieve_string(text: str) -> str:
    """A Sieve quoted string (RFC 5228 §2.4.2): backslash and double quote escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _list(values: list[str]) -> str:
    return sieve_string(values[0]) if len(values) == 1 else \
        "[" + ", ".join(sieve_string(v) for v in values) + "]"


def build_script(ruleset: RuleSet) -> str:
    """The Sieve script for a rule set. Flag rules come first so that a later move or the
    implicit keep carries their flags (RFC 5232 §3); moves and deletes stop at the first match."""
    data = json.dumps(asdict(ruleset), ensure_ascii=True, separators=(",", ":"))
    lines = ["# Written by Correio's Rules page; edits here are replaced when rules are saved.",
             DATA_PREFIX + data]
    body: list[str] = []
    needs = {"fileinto"}
    order = {"read": 0, "flag": 0, "forward": 1, "move": 2, "delete": 2}
    for rule in sorted(ruleset.rules, key=lambda r: order[r.action]):
        test = f"header :contains {_list(FIELDS[rule.field])} {sieve_string(rule.contains)}"
        if rule.action == "read":
            needs.add("imap4flags")
            action = 'addflag "\\\\Seen";'
        elif rule.action == "flag":
            needs.add("imap4flags")
            action = 'addflag "\\\\Flagged";'
        elif rule.action == "forward":
            needs.add("copy")
            action = f"redirect :copy {sieve_string(rule.target)};"
        elif rule.action == "move":
            action = f"fileinto {sieve_string(rule.target)}; stop;"
        else:
            action = "discard; stop;"
        body.append(f"if {test} {{\n    {action}\n}}")
    vacation = ruleset.vacation
    if vacation.enabled:
        needs.add("vacation")
        command = f"vacation :days {max(1, min(vacation.days, 30))}"
        if vacation.subject:
            command += f" :subject {sieve_string(vacation.subject)}"
        command += f" {sieve_string(vacation.message)};"
        conditions = []
        if vacation.start:
            conditions.append(f'currentdate :value "ge" "date" {sieve_string(vacation.start)}')
        if vacation.end:
            conditions.append(f'currentdate :value "le" "date" {sieve_string(vacation.end)}')
        if conditions:
            needs.update({"date", "relational"})
            test = conditions[0] if len(conditions) == 1 else f"allof ({', '.join(conditions)})"
            body.insert(0, f"if {test} {{\n    {command}\n}}")
        else:
            body.insert(0, command)
    order_needs = ["fileinto", "imap4flags", "copy", "date", "relational", "vacation"]
    lines.append(f"require {_list([n for n in order_needs if n in needs])};")
    return "\n".join(lines + body) + "\n"


def load_rules(script: str) -> RuleSet | None:
    """The rule set a script was built from, or None when it was not built by the rules page
    (or its data line is damaged)."""
    for line in script.splitlines()[:5]:
        if line.startswith(DATA_PREFIX):
            try:
                data = json.loads(line[len(DATA_PREFIX):])
                rules = [Rule(**r) for r in data.get("rules", [])][:MAX_RULES]
                vacation = VacationSettings(**data.get("vacation", {}))
            except (ValueError, TypeError):
                return None
            if any(r.field not in FIELDS or r.action not in ACTIONS for r in rules):
                return None
            return RuleSet(rules, vacation)
    return None


def check_date(value: str) -> str:
    """An ISO date (YYYY-MM-DD) or ValueError."""
    return date.fromisoformat(value).isoformat() if value else ""
