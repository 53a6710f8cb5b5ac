"""The IMAP command handlers, grouped by the state they need as pymap does (RFC 3501 §6.1-§6.4):
:mod:`.any`, :mod:`.not_authenticated`, :mod:`.authenticated`, :mod:`.selected`. Each group
declares ``STATES``; :func:`check_registry` holds them to the parser's registry
(:data:`mailcore.protocols.imap.parser.COMMANDS`) at import: every command has exactly one
``cmd_NAME``, in the group of the states the registry allows it in, and no handler exists
without a command. :class:`Commands` is what the connection class mixes in."""

from __future__ import annotations

from mailcore.protocols.imap.handlers.any import AnyState
from mailcore.protocols.imap.handlers.authenticated import AuthenticatedState
from mailcore.protocols.imap.handlers.not_authenticated import NotAuthenticatedState
from mailcore.protocols.imap.handlers.selected import SelectedState
from mailcore.protocols.imap.parser import COMMANDS, NOWHERE

GROUPS = (AnyState, NotAuthenticatedState, AuthenticatedState, SelectedState)


class Commands(*GROUPS):
    """Every handler; the connection class of ``server.py`` provides the I/O."""


def check_registry() -> None:
    """Raise RuntimeError when parser registry and handler groups disagree."""
    problems = []
    for name, spec in COMMANDS.items():
        owners = [group for group in GROUPS if f"cmd_{name}" in vars(group)]
        if spec.states == NOWHERE:
            if owners:
                problems.append(f"{name} is never allowed but has a handler")
            continue
        if len(owners) != 1:
            problems.append(f"{name} has {len(owners)} handlers")
        elif owners[0].STATES != spec.states:
            problems.append(f"{name} is registered for other states than {owners[0].__name__}")
    for group in GROUPS:
        for attr in vars(group):
            if attr.startswith("cmd_") and attr[4:] not in COMMANDS:
                problems.append(f"{group.__name__}.{attr} handles no registered command")
    if problems:
        raise RuntimeError("IMAP command registry: " + "; ".join(problems))


check_registry()

__all__ = ["GROUPS", "Commands", "check_registry"]
