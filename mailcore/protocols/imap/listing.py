"""LIST and LSUB for the IMAP session, and the STATUS response they share with STATUS.

- LIST (RFC 3501 §6.3.8) with the extended syntax of LIST-EXTENDED (RFC 5258): selection
  options SUBSCRIBED, REMOTE (there are no remote mailboxes), RECURSIVEMATCH and SPECIAL-USE
  (RFC 6154 §5.3), return options SUBSCRIBED, CHILDREN and SPECIAL-USE, several patterns,
  ``\\NonExistent`` for subscribed names without a folder, and CHILDINFO (§3.5).
- LIST-STATUS (RFC 5819): ``RETURN (STATUS (...))`` answers a STATUS after the LIST response of
  each listed folder, computed for all of them at once: the counters come with the folder rows
  (one query), SIZE and DELETED from one grouped query, RECENT from one counting query.
- LSUB (RFC 3501 §6.3.9).

Attributes: the base LIST always carries ``\\HasChildren``/``\\HasNoChildren`` (CHILDREN,
RFC 3348) and the special uses; the extended LIST carries the children attributes only when
RETURN (CHILDREN) asks (RFC 5258 §4 makes them the return option's), so a client that asked
for nothing gets ``()`` as imaptest's listext script and Dovecot do. Special uses are always
shown (RFC 6154 §2 lets a server do so)."""

from __future__ import annotations

from dataclasses import dataclass

from mailcore.models import FolderRole
from mailcore.protocols.common.services import call_service
from mailcore.protocols.imap.commands import Reply
from mailcore.protocols.imap.extended import ListArguments
from mailcore.protocols.imap.parser import ListFolders
from mailcore.protocols.imap.patterns import Pattern, PatternTooLong
from mailcore.protocols.imap.state import claim_recent
from mailcore.services import imap_read, quota
from mailcore.services.imap_read import StatusInfo

DELIMITER = "/"
SPECIAL_USE = {
    FolderRole.SENT: "\\Sent",
    FolderRole.DRAFTS: "\\Drafts",
    FolderRole.TRASH: "\\Trash",
    FolderRole.JUNK: "\\Junk",
    FolderRole.ARCHIVE: "\\Archive",
}
# CREATE-SPECIAL-USE (RFC 6154 §3): the use attributes a folder can be created with.
ROLE_OF_USE = {use.lower(): role for role, use in SPECIAL_USE.items()}
_USAGE_ITEMS = frozenset({"SIZE", "DELETED", "DELETED-STORAGE"})


def kib(octets: int) -> int:
    """RFC 9208 §5.1: STORAGE in units of 1024 octets, rounded up."""
    return (octets + 1023) // 1024


def status_line(name_text: str, items: list[str] | tuple[str, ...], info: StatusInfo,
                usage: tuple[int, int, int] | None, recent: int | None) -> str:
    """``* STATUS name (...)`` (RFC 3501 §7.2.4) of known items, in the order asked;
    ``name_text`` is the name as the session writes names (``Session.mailbox_text``)."""
    out = []
    for item in items:
        if item == "MESSAGES":
            out.append(f"MESSAGES {info.messages}")
        elif item == "RECENT":
            out.append(f"RECENT {recent or 0}")
        elif item == "UIDNEXT":
            out.append(f"UIDNEXT {info.uidnext}")
        elif item == "UIDVALIDITY":
            out.append(f"UIDVALIDITY {info.uidvalidity}")
        elif item == "UNSEEN":
            out.append(f"UNSEEN {info.unseen}")
        elif item == "HIGHESTMODSEQ":
            out.append(f"HIGHESTMODSEQ {info.highestmodseq}")  # RFC 7162 §3.1.6
        else:
            size, deleted, deleted_size = usage or (0, 0, 0)
            # STATUS=SIZE (RFC 8438) in octets; DELETED-STORAGE (RFC 9208 §4.2) in KiB.
            out.append({"SIZE": f"SIZE {size}", "DELETED": f"DELETED {deleted}",
                        "DELETED-STORAGE": f"DELETED-STORAGE {kib(deleted_size)}"}[item])
    return f"* STATUS {name_text} ({' '.join(out)})\r\n"


def needs_usage(items) -> bool:
    return any(item in _USAGE_ITEMS for item in items)


def _compile(reference: str, patterns) -> list[Pattern]:
    try:
        return [Pattern(reference + pattern) for pattern in patterns]
    except PatternTooLong:
        raise Reply("NO", "[LIMIT] Mailbox pattern too long") from None


@dataclass(frozen=True)
class Listed:
    """One LIST response to send: the folder row (None for a subscribed name without folder),
    whether it meets the selection criteria (then it gets LIST-STATUS's STATUS) and whether
    it carries CHILDINFO."""

    name: str
    row: imap_read.ListedFolder | None
    chosen: bool
    childinfo: bool
    subscribed: bool
    has_children: bool


def select_listed(mailbox, args: ListArguments, patterns: list[Pattern]) -> list[Listed]:
    """The folders a LIST answers with, by name. Run in a service thread: matching up to
    MAX_LIST_PATTERNS patterns against every folder is CPU work the event loop must not do."""

    def matches(name: str) -> bool:
        return any(pattern.matches(name) for pattern in patterns)

    rows = imap_read.list_folders_status(mailbox)
    existing = {row.name: row for row in rows}
    parents = {name.rpartition(DELIMITER)[0] for name in existing if DELIMITER in name}
    special_only = "SPECIAL-USE" in args.select
    if "SUBSCRIBED" in args.select:
        subscribed = set(imap_read.subscribed_names(mailbox))
        candidates = subscribed
    else:
        subscribed = {row.name for row in rows if row.subscribed}
        candidates = set(existing)
    # The names meeting the selection criteria (RFC 5258 §3.1), whether or not they match.
    chosen = {name for name in candidates if not special_only or (
        name in existing and existing[name].role in SPECIAL_USE)}
    listed = {name for name in chosen if matches(name)}
    # RECURSIVEMATCH (§3.1, §3.5): a matching name with a chosen descendant gets CHILDINFO,
    # and is listed for it when that descendant is not listed itself (as Dovecot does, and
    # imaptest's listext script checks): the one case where the client would not learn of it.
    childinfo: set[str] = set()
    if "RECURSIVEMATCH" in args.select:
        for name in chosen:
            parts = name.split(DELIMITER)
            for depth in range(len(parts) - 1, 0, -1):
                parent = DELIMITER.join(parts[:depth])
                if matches(parent):
                    childinfo.add(parent)
                    if name not in listed:
                        listed.add(parent)
    return [Listed(name, existing.get(name), name in chosen, name in childinfo,
                   name in subscribed, name in parents) for name in sorted(listed)]


async def run_list(session, cmd: ListFolders) -> str:
    args = cmd.args
    if cmd.name == "LSUB":
        return await _lsub(session, args.reference, args.patterns[0])
    patterns = [pattern for pattern in args.patterns if pattern != ""]
    if not patterns:
        # §6.3.8: an empty pattern asks for the hierarchy delimiter and root; an extended
        # LIST with only empty patterns is read the same way.
        session.send(f'* LIST (\\Noselect) "{DELIMITER}" ""\r\n')
        return "LIST completed"
    compiled = _compile(args.reference, patterns)
    found = await call_service(select_listed, session.mailbox, args, compiled)
    children = not args.extended or "CHILDREN" in args.returns
    statuses = await _statuses(session, args.status, [
        item.row for item in found if item.row is not None and item.chosen])
    out = []
    for item in found:
        row = item.row
        attrs = []
        if row is None:
            attrs.append("\\NonExistent")  # RFC 5258 §3.4: implies \Noselect
        if children:
            attrs.append("\\HasChildren" if item.has_children else "\\HasNoChildren")
        if row is not None and row.role in SPECIAL_USE:
            attrs.append(SPECIAL_USE[row.role])
        if "SUBSCRIBED" in args.returns and item.subscribed:
            attrs.append("\\Subscribed")
        line = f"* LIST ({' '.join(attrs)}) \"{DELIMITER}\" {session.mailbox_text(item.name)}"
        if item.childinfo:
            line += ' ("CHILDINFO" ("SUBSCRIBED"))'
        out.append(line + "\r\n")
        if item.name in statuses:
            out.append(statuses[item.name])  # RFC 5819 §2: after the folder's LIST response
    session.send("".join(out))
    return "LIST completed"


async def _statuses(session, items, rows) -> dict[str, str]:
    """The STATUS responses of LIST-STATUS (RFC 5819), by folder name: one query for SIZE and
    DELETED, one for RECENT, the rest from the folder rows."""
    if not items or not rows:
        return {}
    if "HIGHESTMODSEQ" in items:
        session.enable_condstore()  # RFC 7162 §3.1: as STATUS HIGHESTMODSEQ does
    usage = {}
    if needs_usage(items):
        usage = await call_service(quota.folders_usage, [row.id for row in rows])
    recent: dict[int, int] = {}
    if "RECENT" in items:
        claims = {row.id: claim_recent(row.id, 0) for row in rows}
        # A folder no session of this process has seen: all its messages are recent (§2.3.2).
        recent = {row.id: row.status.messages for row in rows if not claims[row.id]}
        above = {pk: claim for pk, claim in claims.items() if claim}
        if above:
            recent.update(await call_service(imap_read.count_above, above))
    return {
        row.name: status_line(session.mailbox_text(row.name), items, row.status, usage.get(row.id),
                              recent.get(row.id, 0))
        for row in rows
    }


async def _lsub(session, reference: str, pattern_text: str) -> str:
    """LSUB (RFC 3501 §6.3.9): the subscribed names matching, existing folders or not;
    with ``%``, a parent that is not subscribed but has a subscribed child is returned
    with ``\\Noselect`` in the child's place."""
    pattern = _compile(reference, [pattern_text])[0]
    percent = "%" in reference + pattern_text
    rows = await call_service(imap_read.list_folder_rows, session.mailbox)
    subscribed = await call_service(imap_read.subscribed_names, session.mailbox)
    names = {name for name, _role, _sub in rows}
    parents = {name.rpartition(DELIMITER)[0] for name in names if DELIMITER in name}
    subs = set(subscribed)
    found: dict[str, str] = {}
    for name in subscribed:
        if pattern.matches(name):
            if name not in names:
                found[name] = ""
            else:
                found[name] = "\\HasChildren" if name in parents else "\\HasNoChildren"
        if not percent:
            continue
        parts = name.split(DELIMITER)
        for depth in range(1, len(parts)):
            parent = DELIMITER.join(parts[:depth])
            if parent not in subs and pattern.matches(parent):
                found.setdefault(parent, "\\Noselect")
    session.send("".join(f'* LSUB ({found[name]}) "{DELIMITER}" {session.mailbox_text(name)}\r\n'
                         for name in sorted(found)))
    return "LSUB completed"
