"""What every IMAP command handler shares: the reply exception and the one table from domain
errors to replies, and :class:`Session`, the session helpers the handlers call (capabilities,
state requirements, flag formatting, untagged updates of RFC 3501 §7.4.1, CONDSTORE/QRESYNC
bookkeeping of RFC 7162).

The handlers themselves are grouped by the state they need, as pymap does:
:mod:`mailcore.protocols.imap.handlers` (``any``, ``not_authenticated``, ``authenticated``,
``selected``), with FETCH's planning and formatting in :mod:`mailcore.protocols.imap.fetch`.
Each ``cmd_NAME`` calls the service layer through ``call_service`` (never the ORM on the event
loop), writes untagged responses, and returns the tagged status text or raises a domain error,
which :data:`ERRORS` maps to a reply. The I/O (framing, TLS, IDLE's waiting) lives in
:mod:`mailcore.protocols.imap.server`."""

from __future__ import annotations

from mailcore import exceptions as exc
from mailcore.models import Folder
from mailcore.protocols.common.services import call_service
from mailcore.protocols.imap import response as fmt
from mailcore.protocols.imap.lexer import encode_mailbox
from mailcore.protocols.imap.parser import State
from mailcore.protocols.imap.state import BadSequence, Selected, claim_recent
from mailcore.services import imap_read
from mailcore.services.imap_read import FlagRow

SYSTEM_FLAGS = "\\Answered \\Flagged \\Deleted \\Seen \\Draft"
MAX_FAILED_LOGINS = 5  # per connection; the shared throttle counts across connections


class Reply(Exception):
    """End a command with a status other than OK: ``Reply("NO", "[CANNOT] text")``."""

    def __init__(self, status: str, text: str):
        super().__init__(text)
        self.status = status
        self.text = text


# The one table from domain errors to replies (RFC 5530 response codes).
ERRORS: dict[type[Exception], tuple[str, str]] = {
    exc.FolderNotFound: ("NO", "[NONEXISTENT] No such folder"),
    exc.FolderExists: ("NO", "[ALREADYEXISTS] Folder already exists"),
    exc.FolderProtected: ("NO", "[CANNOT] Special folders cannot be deleted or renamed"),
    # RFC 6154 §3: the special use is not supported, or another folder has it.
    exc.SpecialUseUnavailable: ("NO", "[USE] That special use cannot be given to this folder"),
    # RFC 9051 §7.1: HASCHILDREN names this refusal (RFC 3501 clients read it as any NO).
    exc.FolderHasChildren: ("NO", "[HASCHILDREN] Folder has subfolders; delete them first"),
    exc.InvalidFolderName: ("NO", "[CANNOT] Invalid folder name"),
    exc.QuotaExceeded: ("NO", "[OVERQUOTA] Mailbox is over quota"),
    exc.MessageTooLarge: ("NO", "[TOOBIG] Message exceeds the size limit"),
    exc.AuthThrottled: ("NO", "[UNAVAILABLE] Too many failed logins; try again later"),
    exc.AuthFailed: ("NO", "[AUTHENTICATIONFAILED] Authentication failed"),
    exc.MailboxInactive: ("NO", "[AUTHENTICATIONFAILED] Authentication failed"),
    exc.MailboxNotFound: ("NO", "[AUTHENTICATIONFAILED] Authentication failed"),
    exc.MailError: ("NO", "Failed"),
    BadSequence: ("BAD", "Invalid message sequence number"),
}


def error_reply(error: Exception) -> tuple[str, str] | None:
    for cls in type(error).__mro__:
        if cls in ERRORS:
            status, text = ERRORS[cls]
            if cls is exc.InvalidFolderName:
                text = f"[CANNOT] {error}"
            elif cls is exc.MailError:
                text = str(error)
            return status, text
    return None


def format_uid_set(uids: list[int]) -> str:
    """1,2,3,5 → "1:3,5" (RFC 4315 uid-set)."""
    out = []
    start = prev = None
    for uid in uids:
        if start is None:
            start = prev = uid
        elif uid == prev + 1:
            prev = uid
        else:
            out.append(f"{start}:{prev}" if start != prev else str(start))
            start = prev = uid
    if start is not None:
        out.append(f"{start}:{prev}" if start != prev else str(start))
    return ",".join(out)


class Session:
    """Helpers shared by the handler groups; mixed into the connection class of ``server.py``,
    which provides ``send``, ``flush``, ``read_line``, ``start_tls``, ``idle`` and the
    connection attributes used here."""

    def capabilities(self) -> str:
        caps = ["IMAP4rev1", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE", "NAMESPACE",
                "UIDPLUS", "MOVE", "SPECIAL-USE", "CHILDREN", "UNSELECT", "CONDSTORE", "QRESYNC",
                "MULTIAPPEND", "SORT", "SORT=DISPLAY", "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT",
                "ESEARCH", "ESORT", "QUOTA", "QUOTA=RES-STORAGE", "STATUS=SIZE",
                "COMPRESS=DEFLATE", "WITHIN", "BINARY", "UTF8=ACCEPT", "IMAP4rev2"]
        caps += ["SEARCHRES", "LIST-EXTENDED", "LIST-STATUS", "CREATE-SPECIAL-USE"]
        if self.state is State.NOT_AUTHENTICATED:
            if self.tls_context is not None and not self.tls_active:
                caps.append("STARTTLS")
            if self.plaintext_allowed():
                caps.append("AUTH=PLAIN")
            else:
                caps.append("LOGINDISABLED")
        caps.append(f"APPENDLIMIT={self.config.max_message_size}")
        return " ".join(caps)

    def plaintext_allowed(self) -> bool:
        return self.tls_active or self.options.allow_plaintext(self.peer_ip)

    def require_selected(self) -> Selected:
        if self.selected is None:
            raise Reply("BAD", "No folder selected")
        return self.selected

    def require_writable(self) -> Selected:
        selected = self.require_selected()
        if selected.readonly:
            raise Reply("NO", "[READ-ONLY] The folder was opened with EXAMINE")
        return selected

    @property
    def utf8_names(self) -> bool:
        """Mailbox names travel as UTF-8, not modified UTF-7: after ENABLE UTF8=ACCEPT (RFC 6855
        §3) or ENABLE IMAP4rev2 (RFC 9051 §5.1: modified UTF-7 is for IMAP4rev1 only)."""
        return self.utf8_accept or self.rev2

    def mailbox_text(self, name: str) -> str:
        """A mailbox name as this session's client reads it: modified UTF-7 for IMAP4rev1, else
        a UTF-8 quoted string (RFC 6855 §3 allows UTF-8 in quoted strings once enabled)."""
        if self.utf8_names:
            return fmt.utf8_string(name)
        return fmt.string(encode_mailbox(name))

    def flags_text(self, row: FlagRow) -> str:
        """FLAGS of a message, with \\Recent when this session holds it (RFC 3501 §2.3.2); an
        IMAP4rev2 session is never shown \\Recent (RFC 9051 Appendix E: removed)."""
        recent = (self.selected is not None and not self.rev2
                  and self.selected.is_recent(row.uid))
        return fmt.flags(row.seen, row.answered, row.flagged, row.deleted, row.draft,
                         row.keywords, recent)

    def send_flag_lists(self) -> None:
        """The untagged FLAGS and PERMANENTFLAGS of the selected folder (RFC 3501 §7.2.6,
        §7.1): system flags and the keywords announced so far."""
        sel = self.selected
        flag_list = " ".join([SYSTEM_FLAGS, *sel.keywords.values()])
        self.send(f"* FLAGS ({flag_list})\r\n")
        if sel.readonly:
            self.send("* OK [PERMANENTFLAGS ()] Read-only folder\r\n")
        else:
            self.send(f"* OK [PERMANENTFLAGS ({flag_list} \\*)] Flags permitted\r\n")

    def announce_keywords(self, keyword_lists) -> None:
        """Before a FETCH shows a keyword the client has not been told of (set by this session
        or another), announce the new flag lists: a client may only be shown keywords that an
        untagged FLAGS listed (RFC 3501 §7.2.6; imaptest checks it)."""
        sel = self.selected
        if sel is None:
            return
        known = sel.keywords
        new = False
        for keywords in keyword_lists:
            for keyword in keywords or ():
                if keyword not in known:
                    known[keyword] = keyword
                    new = True
        if new:
            self.send_flag_lists()

    def enable_condstore(self) -> None:
        """A CONDSTORE enabling command (RFC 7162 §3.1): from now on flag updates carry MODSEQ;
        with a folder selected, its HIGHESTMODSEQ is announced now."""
        if self.condstore:
            return
        self.condstore = True
        if self.selected is not None:
            self.send(f"* OK [HIGHESTMODSEQ {self.selected.modseq}] Highest\r\n")

    def send_expunged(self, uids: list[int]) -> None:
        """Forget expunged UIDs and tell the client: ``* n EXPUNGE`` each, or one ``* VANISHED``
        once QRESYNC is enabled (RFC 7162 §3.2.10)."""
        sel = self.selected
        gone = []
        for uid in sorted(uids):
            seq = sel.remove(uid)
            if seq is None:
                continue
            gone.append(uid)
            if not self.qresync:
                self.send(f"* {seq} EXPUNGE\r\n")
        if self.qresync and gone:
            self.send(f"* VANISHED {format_uid_set(gone)}\r\n")

    def flag_update(self, seq: int, row: FlagRow) -> str:
        """An untagged FETCH of new flags; with CONDSTORE it carries MODSEQ (RFC 7162 §3.1)."""
        extra = f" MODSEQ ({row.modseq})" if self.condstore else ""
        return f"* {seq} FETCH (UID {row.uid} FLAGS {self.flags_text(row)}{extra})\r\n"

    def deselect(self) -> None:
        self.selected = None
        if self.state is State.SELECTED:
            self.state = State.AUTHENTICATED

    async def send_updates(self, allow_expunge: bool, force: bool = False) -> None:
        """Tell the client what changed in the selected folder elsewhere (RFC 3501 §7.4.1):
        EXPUNGE (only when ``allow_expunge``; otherwise kept pending), EXISTS/RECENT, and
        FETCH FLAGS for flags changed by others."""
        sel = self.selected
        if sel is None or not (sel.stale or force or (allow_expunge and sel.pending_expunged)):
            return
        sel.dirty = False
        try:
            changes = await call_service(imap_read.changes, sel.folder.pk, sel.modseq)
        except Folder.DoesNotExist:
            self.send("* BYE The selected folder was deleted\r\n")
            self.state = State.LOGOUT
            return
        new: list[int] = []
        flag_rows: list[FlagRow] = []
        if changes is not None:
            known_max = sel.uids[-1] if sel.uids else 0
            for uid in changes.expunged:
                if uid <= known_max and sel.seq_of(uid) is not None:
                    sel.pending_expunged.add(uid)
            for row in changes.changed:
                if row.uid > known_max:
                    new.append(row.uid)
                elif row.modseq not in sel.own_modseqs and row.uid not in sel.pending_expunged:
                    flag_rows.append(row)
            sel.modseq = max(sel.modseq, changes.highestmodseq)
            sel.own_modseqs = {m for m in sel.own_modseqs if m > sel.modseq}
        if allow_expunge and sel.pending_expunged:
            self.send_expunged(list(sel.pending_expunged))
            sel.pending_expunged.clear()
        if new:
            sel.uids.extend(new)
            if not sel.readonly:
                previous = claim_recent(sel.folder.pk, new[-1])
                sel.add_recent(max(previous + 1, new[0]), new[-1])
            self.send(f"* {sel.exists} EXISTS\r\n")
            if not self.rev2:  # RFC 9051 Appendix E: no RECENT response in IMAP4rev2
                self.send(f"* {sel.recent_count()} RECENT\r\n")
        self.announce_keywords(row.keywords for row in flag_rows)
        for row in flag_rows:
            seq = sel.seq_of(row.uid)
            if seq is not None:
                self.send(self.flag_update(seq, row))


__all__ = ["ERRORS", "Reply", "Session", "error_reply", "format_uid_set"]
