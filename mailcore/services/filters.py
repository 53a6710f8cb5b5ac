"""Sieve scripts of a mailbox (RFC 5228, managed as RFC 5804 describes): store, check,
activate, rename and delete them; find the active, compiled script of recipients at delivery;
record what filtering did for the user to see.

Every door (ManageSieve, the webmail rules page) goes through these functions, so the limits
and the syntax check are one rule in one place. Compiled scripts are cached per process under
their content digest: delivery costs one indexed query per message, not a parse."""

import hashlib
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from mailcore.exceptions import MailError
from mailcore.models import FilterEvent, Mailbox, SieveScript
from mailcore.sieve import rules
from mailcore.sieve.compile import Script, compile_script
from mailcore.sieve.grammar import SieveSyntaxError

MAX_NAME = 128
MAX_EVENTS_KEPT = 200  # per mailbox; older filter events are trimmed
_CACHE_ENTRIES = 1000


class ScriptError(MailError):
    message = "script error"


class ScriptInvalid(ScriptError):
    """The script does not compile; ``line`` is where (RFC 5804 §2.6: reported to the user)."""

    def __init__(self, message: str, line: int = 0):
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line
        self.detail = message


class ScriptNotFound(ScriptError):
    message = "no such script"


class ScriptExists(ScriptError):
    message = "a script with that name already exists"


class ScriptActive(ScriptError):
    message = "the active script cannot be deleted"


class ScriptQuota(ScriptError):
    """Over the size or count limit (RFC 5804 §1.3 QUOTA/MAXSIZE, QUOTA/MAXSCRIPTS)."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


class BadScriptName(ScriptError):
    message = "bad script name"


@dataclass(frozen=True)
class ScriptInfo:
    name: str
    active: bool
    size: int


def check_name(name: str) -> str:
    """RFC 5804 §1.6: a script name is UTF-8 without control characters (NFC form)."""
    name = unicodedata.normalize("NFC", name)
    if not name or len(name) > MAX_NAME or any(
        unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name
    ):
        raise BadScriptName(f"script names are 1 to {MAX_NAME} printable characters")
    return name


def check_script(text: str) -> Script:
    """Compile ``text``; raises ``ScriptQuota`` when too large and ``ScriptInvalid`` with the
    line of the first fault."""
    if len(text.encode("utf-8", "surrogatepass")) > settings.CORREIO_SIEVE_MAX_SCRIPT_SIZE:
        raise ScriptQuota("script is too large", "QUOTA/MAXSIZE")
    try:
        return compile_script(text)
    except SieveSyntaxError as error:
        raise ScriptInvalid(error.message, error.line) from None
    except RecursionError:
        raise ScriptInvalid("script nests too deeply") from None


def list_scripts(mailbox: Mailbox) -> list[ScriptInfo]:
    rows = SieveScript.objects.filter(mailbox=mailbox).order_by("name")
    return [ScriptInfo(r.name, r.active, len(r.content.encode())) for r in rows]


def get_script(mailbox: Mailbox, name: str) -> str:
    row = SieveScript.objects.filter(mailbox=mailbox, name=name).first()
    if row is None:
        raise ScriptNotFound(name)
    return row.content


def active_script_name(mailbox: Mailbox) -> str | None:
    return (SieveScript.objects.filter(mailbox=mailbox, active=True)
            .values_list("name", flat=True).first())


def check_space(mailbox: Mailbox, name: str, size: int) -> None:
    """Would a script of ``size`` octets under ``name`` fit (RFC 5804 §2.3 HAVESPACE)?"""
    if size > settings.CORREIO_SIEVE_MAX_SCRIPT_SIZE:
        raise ScriptQuota("script is too large", "QUOTA/MAXSIZE")
    names = set(SieveScript.objects.filter(mailbox=mailbox).values_list("name", flat=True))
    if name not in names and len(names) >= settings.CORREIO_SIEVE_MAX_SCRIPTS:
        raise ScriptQuota("too many scripts", "QUOTA/MAXSCRIPTS")


def put_script(mailbox: Mailbox, name: str, text: str, *, activate: bool = False) -> None:
    """Store a script (replacing one of the same name) after checking it compiles and fits.
    Raises ``ScriptInvalid``, ``ScriptQuota``, ``BadScriptName``. RFC 5804 §2.6: the active
    script may be replaced; it stays active."""
    name = check_name(name)
    check_script(text)
    with transaction.atomic():
        check_space(mailbox, name, len(text.encode()))
        row, _created = SieveScript.objects.select_for_update().get_or_create(
            mailbox=mailbox, name=name, defaults={"digest": ""})
        row.content = text
        row.digest = hashlib.sha256(text.encode()).hexdigest()
        row.save()
        if activate:
            set_active(mailbox, name)


def set_active(mailbox: Mailbox, name: str) -> None:
    """Make ``name`` the active script; ``""`` deactivates all (RFC 5804 §2.8)."""
    with transaction.atomic():
        if name and not SieveScript.objects.filter(mailbox=mailbox, name=name).exists():
            raise ScriptNotFound(name)
        SieveScript.objects.filter(mailbox=mailbox, active=True).exclude(name=name).update(
            active=False)
        if name:
            SieveScript.objects.filter(mailbox=mailbox, name=name).update(active=True)


def delete_script(mailbox: Mailbox, name: str) -> None:
    """RFC 5804 §2.10: the active script cannot be deleted."""
    with transaction.atomic():
        row = SieveScript.objects.select_for_update().filter(mailbox=mailbox, name=name).first()
        if row is None:
            raise ScriptNotFound(name)
        if row.active:
            raise ScriptActive(name)
        row.delete()


def rename_script(mailbox: Mailbox, old: str, new: str) -> None:
    """RFC 5804 §2.11.1: renaming keeps the active state; the new name must be free."""
    new = check_name(new)
    try:
        with transaction.atomic():
            row = SieveScript.objects.filter(mailbox=mailbox, name=old).first()
            if row is None:
                raise ScriptNotFound(old)
            if old == new:
                return
            if SieveScript.objects.filter(mailbox=mailbox, name=new).exists():
                raise ScriptExists(new)
            row.name = new
            row.save(update_fields=["name", "updated"])
    except IntegrityError:
        raise ScriptExists(new) from None


# --- at delivery ------------------------------------------------------------------------------

_SCRIPTS = SieveScript._meta.db_table
_lock = threading.Lock()
_compiled: "OrderedDict[str, Script | ScriptInvalid]" = OrderedDict()


def _compile_cached(digest: str, load) -> Script | None:
    with _lock:
        entry = _compiled.get(digest)
        if entry is not None:
            _compiled.move_to_end(digest)
    if entry is None:
        try:
            entry = check_script(load())
        except ScriptError as error:
            entry = ScriptInvalid(str(error))
        with _lock:
            _compiled[digest] = entry
            while len(_compiled) > _CACHE_ENTRIES:
                _compiled.popitem(last=False)
    return entry if isinstance(entry, Script) else None


def active_scripts(mailbox_ids: Sequence[int]) -> dict[int, Script | None]:
    """The compiled active script of each mailbox that has one (None: it no longer compiles,
    say after a limit was lowered; delivery then keeps and records the error). One query."""
    if not mailbox_ids:
        return {}
    # Plain SQL: this runs for every delivered message, where building the ORM query would
    # cost more than executing it (as in services/delivery.py).
    marks = ", ".join(["%s"] * len(mailbox_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT mailbox_id, id, digest FROM {_SCRIPTS} WHERE active = %s"
            f" AND mailbox_id IN ({marks})", [True, *mailbox_ids])
        rows = cursor.fetchall()
    result: dict[int, Script | None] = {}
    for mailbox_id, script_id, digest in rows:
        result[mailbox_id] = _compile_cached(
            digest,
            lambda sid=script_id: SieveScript.objects.filter(pk=sid)
            .values_list("content", flat=True).first() or "",
        )
    return result


def record_event(mailbox_id: int, kind: str, detail: str, *, message_id: str = "",
                 outbound_id: int | None = None) -> None:
    """Remember what filtering did (errors, discards, rejects, redirects, vacation replies)
    for the user; only the newest ``MAX_EVENTS_KEPT`` per mailbox are kept."""
    FilterEvent.objects.create(mailbox_id=mailbox_id, at=timezone.now(), kind=kind,
                               detail=detail[:2000], message_id=message_id[:998],
                               outbound_id=outbound_id)
    stale = (FilterEvent.objects.filter(mailbox_id=mailbox_id).order_by("-at", "-id")
             .values_list("id", flat=True)[MAX_EVENTS_KEPT:MAX_EVENTS_KEPT + 50])
    stale_ids = list(stale)
    if stale_ids:
        FilterEvent.objects.filter(id__in=stale_ids).delete()


def recent_events(mailbox: Mailbox, limit: int = 50) -> list[FilterEvent]:
    return list(FilterEvent.objects.filter(mailbox=mailbox).select_related("outbound")
                .order_by("-at", "-id")[:limit])


# --- the webmail's rules page -------------------------------------------------------------------

RULES_SCRIPT = "correio-rules"


@dataclass
class RulesState:
    """What the rules page shows: the rule set of the rules script (None when the user wrote
    the script by hand), and the script the raw editor edits (the active one by default)."""

    ruleset: "rules.RuleSet | None"
    script_name: str
    script_text: str
    active: str | None


def rules_state(mailbox: Mailbox) -> RulesState:
    active = active_script_name(mailbox)
    name = active or RULES_SCRIPT
    try:
        text = get_script(mailbox, name)
    except ScriptNotFound:
        text = ""
    ruleset = rules.load_rules(text) if text else rules.RuleSet()
    return RulesState(ruleset, name, text, active)


def save_rules(mailbox: Mailbox, ruleset: "rules.RuleSet") -> None:
    """Write the rule set as the rules script and make it the active one. Raises what
    :func:`put_script` raises."""
    put_script(mailbox, RULES_SCRIPT, rules.build_script(ruleset), activate=True)
