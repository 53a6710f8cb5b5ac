"""IMAP4rev1 command handlers (RFC 3501 §6) and the extensions Correio announces: IDLE (RFC
2177), UIDPLUS (RFC 4315), MOVE (RFC 6851), SPECIAL-USE (RFC 6154), NAMESPACE (RFC 2342), ID
(RFC 2971), ENABLE (RFC 5161), LITERAL+ (RFC 7888), UNSELECT (RFC 3691), CHILDREN (RFC 3348),
SASL-IR (RFC 4959), CONDSTORE and QRESYNC (RFC 7162).

Each ``cmd_NAME`` checks what the session state needs, calls the service layer through
``call_service`` (never the ORM on the event loop), and writes untagged responses; it returns
the tagged status text or raises a domain error, which :data:`ERRORS` maps to a reply. The I/O
(framing, TLS, IDLE's waiting) lives in :mod:`mailcore.protocols.imap.server`."""

from __future__ import annotations

import base64
import binascii
import re
from bisect import bisect_left

from mailcore import exceptions as exc
from mailcore import metrics
from mailcore.mime.structure import find_part
from mailcore.models import Folder, FolderRole
from mailcore.protocols.common.services import call_service
from mailcore.protocols.imap import response as fmt
from mailcore.protocols.imap.parser import Command, FetchAtt, ParseError, Section, encode_mailbox
from mailcore.protocols.imap.state import BadSequence, Selected, State, claim_recent
from mailcore.services import credentials, delivery, imap_read, mailboxes
from mailcore.services import imap_search as search_service
from mailcore.services.common import UidRanges

SYSTEM_FLAGS = "\\Answered \\Flagged \\Deleted \\Seen \\Draft"
FETCH_CHUNK = 2000
BLOB_BATCH_BYTES = 4 * 1024 * 1024
MAX_FAILED_LOGINS = 5  # per connection; the shared throttle counts across connections
_SPECIAL_USE = {
    FolderRole.SENT: "\\Sent",
    FolderRole.DRAFTS: "\\Drafts",
    FolderRole.TRASH: "\\Trash",
    FolderRole.JUNK: "\\Junk",
    FolderRole.ARCHIVE: "\\Archive",
}


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
    exc.FolderHasChildren: ("NO", "[CANNOT] Folder has subfolders; delete them first"),
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


def _pattern_regex(pattern: str) -> re.Pattern:
    """LIST wildcards (§6.3.8): ``*`` matches anything, ``%`` anything but the delimiter."""
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append("[^/]*")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _matches(regex: re.Pattern, name: str) -> bool:
    if regex.match(name):
        return True
    # INBOX is case-insensitive (§5.1), and so is the INBOX/ prefix of its children.
    if name == "INBOX" or name.startswith("INBOX/"):
        return bool(regex.match(name.lower())) or bool(regex.match(name.upper()))
    return False


def _header_fields(block: bytes, names: tuple[str, ...], exclude: bool) -> bytes:
    """The fields of a header block named (or, with ``exclude``, not named) in ``names``,
    byte for byte with their folding, followed by the empty line (§6.4.5)."""
    wanted = {name.lower() for name in names}
    out = []
    keep = False
    for line in block.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):
            if keep:
                out.append(line)
            continue
        if line in (b"\r\n", b"\n"):
            break
        name = line.split(b":", 1)[0].strip().decode("ascii", "replace").lower()
        keep = (name in wanted) != exclude
        if keep:
            out.append(line)
    out.append(b"\r\n")
    return b"".join(out)


def section_bytes(raw: bytes, structure: dict, section: Section) -> bytes | None:
    """The octets of a BODY[section] (§6.4.5) sliced from the stored message with the cached
    offsets; None when the message has no such part."""
    spec = section.spec
    if section.parts:
        part = find_part(structure, list(section.parts))
        if part is None:
            return None
        if spec == "":
            return raw[part["body_start"] : part["body_end"]]
        if spec == "MIME":
            return raw[part["header_start"] : part["body_start"]]
        # HEADER/TEXT of a part address the message it encapsulates (message/rfc822).
        if part["type"] != "message" or not part["children"]:
            return None
        node = part["children"][0]
    else:
        node = structure
        if spec == "":
            return raw
    if spec == "TEXT":
        return raw[node["body_start"] : node["body_end"]]
    header = raw[node["header_start"] : node["body_start"]]
    if spec == "HEADER":
        return header
    return _header_fields(header, section.fields, spec == "HEADER.FIELDS.NOT")


def _move_or_copy(mailbox, source: Folder, uids, name: str, move: bool):
    try:
        target = mailboxes.get_folder(mailbox, name)
    except exc.FolderNotFound:
        raise Reply("NO", "[TRYCREATE] No such folder") from None
    if move:
        return target.uidvalidity, mailboxes.move_messages(source, uids, target)
    return target.uidvalidity, mailboxes.copy_messages(source, uids, target)


def _append(mailbox, name: str, raw: bytes, flags: list[str], date, max_size: int):
    try:
        folder = imap_read.get_folder_fast(mailbox, name)
    except exc.FolderNotFound:
        raise Reply("NO", "[TRYCREATE] No such folder") from None
    message = delivery.append_message(
        folder, raw, flags=flags, internal_date=date, max_size=max_size
    )
    return folder.pk, folder.uidvalidity, message.uid, message.modseq


def _expunge(folder: Folder, uids):
    removed = mailboxes.expunge(folder, uids)
    return removed, folder.highestmodseq if removed else None


def _uses_modseq(key: tuple) -> bool:
    kind = key[0]
    if kind == "modseq":
        return True
    if kind == "and":
        return any(_uses_modseq(child) for child in key[1])
    if kind == "or":
        return _uses_modseq(key[1]) or _uses_modseq(key[2])
    if kind == "not":
        return _uses_modseq(key[1])
    return False


def _count_recent(folder_id: int, above: int) -> int:
    from mailcore.models import Message

    return Message.objects.filter(folder_id=folder_id, uid__gt=above).count()


class Commands:
    """The command handlers; mixed into the connection class of ``server.py``, which provides
    ``send``, ``flush``, ``read_line``, ``start_tls`` and the attributes used here."""

    # --- helpers --------------------------------------------------------------------------

    def capabilities(self) -> str:
        caps = ["IMAP4rev1", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE", "NAMESPACE",
                "UIDPLUS", "MOVE", "SPECIAL-USE", "CHILDREN", "UNSELECT", "CONDSTORE", "QRESYNC"]
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

    def flags_text(self, row, offset: int = 1) -> str:
        """FLAGS of a row whose flag columns start at ``offset``."""
        seen, answered, flagged, deleted, draft, keywords = row[offset : offset + 6]
        recent = self.selected is not None and self.selected.is_recent(row[0])
        return fmt.flags(seen, answered, flagged, deleted, draft, keywords, recent)

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

    def flag_update(self, seq: int, uid: int, row, offset: int, modseq: int | None) -> str:
        """An untagged FETCH of new flags; with CONDSTORE it carries MODSEQ (RFC 7162 §3.1)."""
        extra = f" MODSEQ ({modseq})" if self.condstore and modseq is not None else ""
        return f"* {seq} FETCH (UID {uid} FLAGS {self.flags_text(row, offset)}{extra})\r\n"

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
        flag_rows = []
        if changes is not None:
            known_max = sel.uids[-1] if sel.uids else 0
            for uid in changes.expunged:
                if uid <= known_max and sel.seq_of(uid) is not None:
                    sel.pending_expunged.add(uid)
            for row in changes.changed:
                uid = row[0]
                if uid > known_max:
                    new.append(uid)
                elif row[1] not in sel.own_modseqs and uid not in sel.pending_expunged:
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
            self.send(f"* {sel.exists} EXISTS\r\n* {sel.recent_count()} RECENT\r\n")
        for row in flag_rows:
            seq = sel.seq_of(row[0])
            if seq is not None:
                self.send(self.flag_update(seq, row[0], row, 2, row[1]))

    # --- any state ------------------------------------------------------------------------

    async def cmd_CAPABILITY(self, cmd: Command) -> str:
        self.send(f"* CAPABILITY {self.capabilities()}\r\n")
        return "CAPABILITY completed"

    async def cmd_NOOP(self, cmd: Command) -> str:
        await self.send_updates(allow_expunge=True, force=True)
        return "NOOP completed"

    async def cmd_LOGOUT(self, cmd: Command) -> str:
        self.send("* BYE Correio logging out\r\n")
        self.state = State.LOGOUT
        return "LOGOUT completed"

    async def cmd_ID(self, cmd: Command) -> str:
        self.client_id = cmd.args["params"]
        self.send('* ID ("name" "Correio" "vendor" "Correio" "support-url" NIL)\r\n')
        return "ID completed"

    # --- not authenticated ----------------------------------------------------------------

    async def cmd_STARTTLS(self, cmd: Command) -> str:
        if self.tls_active:
            raise Reply("BAD", "TLS is already active")
        if self.tls_context is None:
            raise Reply("NO", "[UNAVAILABLE] TLS is not configured")
        await self.start_tls(cmd.tag)
        return ""

    async def cmd_LOGIN(self, cmd: Command) -> str:
        if not self.plaintext_allowed():
            raise Reply("NO", "[PRIVACYREQUIRED] Plaintext login needs TLS; use STARTTLS")
        await self.login(cmd.args["user"], cmd.args["password"])
        return f"[CAPABILITY {self.capabilities()}] Logged in"

    async def cmd_AUTHENTICATE(self, cmd: Command) -> str:
        if cmd.args["mechanism"] != "PLAIN":
            raise Reply("NO", "[CANNOT] Unsupported authentication mechanism")
        if not self.plaintext_allowed():
            raise Reply("NO", "[PRIVACYREQUIRED] PLAIN needs TLS; use STARTTLS")
        response = cmd.args["initial"]
        if response is None:
            self.send("+ \r\n")
            await self.flush()
            line = (await self.read_line()).strip()
            if line == b"*":
                raise Reply("BAD", "Authentication cancelled")
            response = line.decode("ascii", "replace")
        if response == "=":
            response = ""
        try:
            decoded = base64.b64decode(response, validate=True)
            authzid, authcid, password = decoded.split(b"\0")
            user = authcid.decode("utf-8")
            secret = password.decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise Reply("BAD", "Invalid SASL PLAIN response") from None
        if authzid and authzid != authcid:
            raise Reply("NO", "[AUTHORIZATIONFAILED] Cannot act as another user")
        await self.login(user, secret)
        return f"[CAPABILITY {self.capabilities()}] Logged in"

    async def login(self, user: str, password: str) -> None:
        try:
            with metrics.login_attempt("imap"):
                mailbox = await call_service(
                    credentials.authenticate_cached, user, password, self.peer_ip
                )
        except exc.AuthFailed:
            self.failed_logins += 1
            if self.failed_logins >= MAX_FAILED_LOGINS:
                self.send("* BYE Too many failed logins\r\n")
                self.state = State.LOGOUT
            raise
        self.mailbox = mailbox
        self.state = State.AUTHENTICATED
        self.subscribe_events(mailbox.pk)

    # --- authenticated --------------------------------------------------------------------

    async def cmd_SELECT(self, cmd: Command, readonly: bool = False) -> str:
        qresync = cmd.args.get("qresync")
        if qresync is not None and not self.qresync:
            # RFC 7162 §3.2.5: QRESYNC parameters need ENABLE QRESYNC first.
            raise Reply("BAD", "ENABLE QRESYNC first")
        if self.selected is not None and self.qresync:
            # RFC 7162 §3.2.11: the end of the previous folder's responses.
            self.send("* OK [CLOSED] Previous folder closed\r\n")
        self.deselect()
        if "CONDSTORE" in cmd.args.get("params", ()):
            self.condstore = True  # the HIGHESTMODSEQ below is this command's answer
        snapshot = await call_service(imap_read.select_folder, self.mailbox, cmd.args["mailbox"])
        folder = snapshot.folder
        sel = Selected(folder, readonly, snapshot.uids)
        if sel.uids:
            if readonly:
                previous = claim_recent(folder.pk, 0)
            else:
                previous = claim_recent(folder.pk, sel.uids[-1])
            sel.add_recent(previous + 1, sel.uids[-1])
        keywords = " ".join(snapshot.keywords)
        flag_list = f"{SYSTEM_FLAGS} {keywords}".strip()
        self.send(f"* FLAGS ({flag_list})\r\n")
        if readonly:
            self.send("* OK [PERMANENTFLAGS ()] Read-only folder\r\n")
        else:
            self.send(f"* OK [PERMANENTFLAGS ({flag_list} \\*)] Flags permitted\r\n")
        self.send(f"* {sel.exists} EXISTS\r\n* {sel.recent_count()} RECENT\r\n")
        if snapshot.first_unseen_uid is not None:
            seq = sel.seq_of(snapshot.first_unseen_uid)
            if seq is not None:
                self.send(f"* OK [UNSEEN {seq}] First unseen\r\n")
        self.send(
            f"* OK [UIDVALIDITY {folder.uidvalidity}] UIDs valid\r\n"
            f"* OK [UIDNEXT {folder.uidnext}] Predicted next UID\r\n"
        )
        if self.condstore:
            self.send(f"* OK [HIGHESTMODSEQ {sel.modseq}] Highest\r\n")
        self.selected = sel
        self.state = State.SELECTED
        if qresync is not None and qresync[0] == folder.uidvalidity:
            await self._resync(sel, qresync)
        mode = "READ-ONLY" if readonly else "READ-WRITE"
        return f"[{mode}] {'EXAMINE' if readonly else 'SELECT'} completed"

    async def _resync(self, sel: Selected, qresync: tuple) -> None:
        """QRESYNC (RFC 7162 §3.2.5.1): what the client's cache as of a mod-sequence misses,
        as ``VANISHED (EARLIER)`` and FETCH FLAGS MODSEQ, limited to its known UIDs."""
        _uidvalidity, since, known, _match = qresync
        ranges = None
        if known is not None:
            ranges = UidRanges(tuple(known.resolve(sel.uids[-1] if sel.uids else 1)))
        vanished = await call_service(imap_read.vanished_since, sel.folder.pk, since, ranges)
        if vanished:
            self.send(f"* VANISHED (EARLIER) {format_uid_set(vanished)}\r\n")
        rows = await call_service(imap_read.changed_since, sel.folder.pk, since, ranges)
        out = []
        for row in rows:
            seq = sel.seq_of(row[0])
            if seq is not None:
                out.append(self.flag_update(seq, row[0], row, 2, row[1]))
        self.send("".join(out))

    async def cmd_EXAMINE(self, cmd: Command) -> str:
        return await self.cmd_SELECT(cmd, readonly=True)

    async def cmd_CREATE(self, cmd: Command) -> str:
        name = cmd.args["mailbox"].rstrip("/")
        if name.upper() == "INBOX":
            raise exc.FolderExists()
        await call_service(mailboxes.create_folder, self.mailbox, name)
        return "CREATE completed"

    async def cmd_DELETE(self, cmd: Command) -> str:
        name = cmd.args["mailbox"]
        await call_service(mailboxes.delete_folder, self.mailbox, name)
        if self.selected is not None and self.selected.folder.name == mailboxes.canonical_name(
            name
        ):
            self.deselect()
        return "DELETE completed"

    async def cmd_RENAME(self, cmd: Command) -> str:
        await call_service(
            mailboxes.rename_folder, self.mailbox, cmd.args["old"], cmd.args["new"].rstrip("/")
        )
        return "RENAME completed"

    async def cmd_SUBSCRIBE(self, cmd: Command, subscribed: bool = True) -> str:
        await call_service(
            mailboxes.subscribe_folder, self.mailbox, cmd.args["mailbox"], subscribed
        )
        return f"{'SUBSCRIBE' if subscribed else 'UNSUBSCRIBE'} completed"

    async def cmd_UNSUBSCRIBE(self, cmd: Command) -> str:
        return await self.cmd_SUBSCRIBE(cmd, subscribed=False)

    async def cmd_LIST(self, cmd: Command) -> str:
        lsub = cmd.name == "LSUB"
        reference, pattern = cmd.args["reference"], cmd.args["pattern"]
        if pattern == "" and not lsub:
            # §6.3.8: an empty pattern asks for the hierarchy delimiter and root.
            self.send('* LIST (\\Noselect) "/" ""\r\n')
            return "LIST completed"
        select_opts = set(cmd.args.get("select_opts", ()))
        return_opts = set(cmd.args.get("return_opts", ()))
        regex = _pattern_regex(reference + pattern)
        rows = await call_service(imap_read.list_folder_rows, self.mailbox)
        names = {name for name, _role, _sub in rows}
        parents = {name.rpartition("/")[0] for name in names if "/" in name}
        for name, role, subscribed in rows:
            if not _matches(regex, name):
                continue
            if (lsub or "SUBSCRIBED" in select_opts) and not subscribed:
                continue
            special = _SPECIAL_USE.get(role)
            if "SPECIAL-USE" in select_opts and not special:
                continue
            attrs = ["\\HasChildren" if name in parents else "\\HasNoChildren"]
            if special:
                attrs.append(special)
            if subscribed and ("SUBSCRIBED" in select_opts or "SUBSCRIBED" in return_opts):
                attrs.append("\\Subscribed")
            self.send(
                f"* {cmd.name} ({' '.join(attrs)}) \"/\" {fmt.string(encode_mailbox(name))}\r\n"
            )
        return f"{cmd.name} completed"

    cmd_LSUB = cmd_LIST

    async def cmd_STATUS(self, cmd: Command) -> str:
        folder, info = await call_service(
            imap_read.folder_status, self.mailbox, cmd.args["mailbox"]
        )
        items = []
        for item in cmd.args["items"]:
            if item == "MESSAGES":
                items.append(f"MESSAGES {info.messages}")
            elif item == "RECENT":
                above = claim_recent(folder.pk, 0)
                recent = await call_service(_count_recent, folder.pk, above)
                items.append(f"RECENT {recent}")
            elif item == "UIDNEXT":
                items.append(f"UIDNEXT {info.uidnext}")
            elif item == "UIDVALIDITY":
                items.append(f"UIDVALIDITY {info.uidvalidity}")
            elif item == "UNSEEN":
                items.append(f"UNSEEN {info.unseen}")
            elif item == "HIGHESTMODSEQ":
                items.append(f"HIGHESTMODSEQ {info.highestmodseq}")  # RFC 7162 §3.1.6
                self.enable_condstore()
            else:
                raise Reply("BAD", f"Unknown STATUS item {item}")
        self.send(f"* STATUS {fmt.string(encode_mailbox(folder.name))} ({' '.join(items)})\r\n")
        return "STATUS completed"

    async def cmd_APPEND(self, cmd: Command) -> str:
        raw = cmd.args["message"]
        if not raw:
            raise Reply("NO", "Cannot append an empty message")
        folder_id, uidvalidity, uid, modseq = await call_service(
            _append, self.mailbox, cmd.args["mailbox"], raw, cmd.args["flags"],
            cmd.args["date"], self.config.max_message_size,
        )
        sel = self.selected
        if sel is not None and sel.folder.pk == folder_id:
            if modseq == sel.modseq + 1 and (not sel.uids or uid > sel.uids[-1]):
                # §6.3.11: the new message is announced as new mail would be; nothing else
                # changed in between, so no need to ask the store.
                sel.modseq = modseq
                sel.uids.append(uid)
                if not sel.readonly:
                    previous = claim_recent(sel.folder.pk, uid)
                    sel.add_recent(max(previous + 1, uid), uid)
                self.send(f"* {sel.exists} EXISTS\r\n* {sel.recent_count()} RECENT\r\n")
            else:
                sel.dirty = True
        return f"[APPENDUID {uidvalidity} {uid}] APPEND completed"

    async def cmd_NAMESPACE(self, cmd: Command) -> str:
        self.send('* NAMESPACE (("" "/")) NIL NIL\r\n')
        return "NAMESPACE completed"

    async def cmd_ENABLE(self, cmd: Command) -> str:
        # RFC 5161 §3.1: ENABLED lists what this command newly enabled; unknown names are
        # ignored. QRESYNC implies CONDSTORE (RFC 7162 §3.2.3).
        enabled = []
        for cap in cmd.args["caps"]:
            if cap == "CONDSTORE" and not self.condstore:
                self.enable_condstore()
                enabled.append(cap)
            elif cap == "QRESYNC" and not self.qresync:
                self.enable_condstore()
                self.qresync = True
                enabled.append(cap)
        self.send("* ENABLED" + "".join(f" {cap}" for cap in enabled) + "\r\n")
        return "ENABLE completed"

    async def cmd_IDLE(self, cmd: Command) -> str:
        return await self.idle(cmd)

    # --- selected -------------------------------------------------------------------------

    async def cmd_CHECK(self, cmd: Command) -> str:
        self.require_selected()
        await self.send_updates(allow_expunge=True, force=True)
        return "CHECK completed"

    async def cmd_CLOSE(self, cmd: Command) -> str:
        sel = self.require_selected()
        if not sel.readonly:
            # §6.4.2: expunge silently, no untagged EXPUNGE responses.
            await call_service(mailboxes.expunge, sel.folder)
        self.deselect()
        return "CLOSE completed"

    async def cmd_UNSELECT(self, cmd: Command) -> str:
        self.require_selected()
        self.deselect()
        return "UNSELECT completed"

    async def cmd_EXPUNGE(self, cmd: Command) -> str:
        sel = self.require_writable()
        uids = None
        if cmd.uid:
            uids = sel.uid_ranges(sel.resolve(cmd.args["set"], True))
            if not uids.ranges:
                return "EXPUNGE completed"
        removed, modseq = await call_service(_expunge, sel.folder, uids)
        sel.own_change(modseq)
        self.send_expunged(removed)
        sel.pending_expunged.difference_update(removed)
        if self.condstore:
            # RFC 7162 §3.2.7 (and §3.1.8 for CONDSTORE): the folder's mod-sequence after it.
            return f"[HIGHESTMODSEQ {max(sel.modseq, modseq or 0)}] EXPUNGE completed"
        return "EXPUNGE completed"

    async def cmd_SEARCH(self, cmd: Command) -> str:
        sel = self.require_selected()
        key = self._search_key(sel, cmd.args["key"])
        found = await call_service(search_service.search, sel.folder.pk, key, list(sel.uids))
        if cmd.uid:
            numbers = found
        else:
            numbers = [seq for seq in map(sel.seq_of, found) if seq is not None]
        modseq = ""
        if _uses_modseq(cmd.args["key"]):
            # RFC 7162 §3.1.5: the highest mod-sequence of the messages found.
            self.enable_condstore()
            if found:
                highest = await call_service(imap_read.max_modseq, sel.folder.pk, found)
                modseq = f" (MODSEQ {highest})"
        self.send("* SEARCH" + "".join(f" {n}" for n in numbers) + modseq + "\r\n")
        return "SEARCH completed"

    def _search_key(self, sel: Selected, key: tuple) -> tuple:
        """Turn session-relative keys (message numbers, \\Recent) into UID sets."""
        kind = key[0]
        if kind == "seq":
            return ("uids", sel.uid_ranges(sel.resolve(key[1], False)))
        if kind == "uid":
            return ("uids", sel.uid_ranges(sel.resolve(key[1], True)))
        if kind == "recent":
            return ("uids", sel.recent_ranges())
        if kind == "new":
            return ("and", [("uids", sel.recent_ranges()), ("flag", "seen", False)])
        if kind == "old":
            return ("not", ("uids", sel.recent_ranges()))
        if kind == "and":
            return ("and", [self._search_key(sel, child) for child in key[1]])
        if kind == "or":
            return ("or", self._search_key(sel, key[1]), self._search_key(sel, key[2]))
        if kind == "not":
            return ("not", self._search_key(sel, key[1]))
        return key

    async def cmd_STORE(self, cmd: Command) -> str:
        sel = self.require_writable()
        ranges = sel.resolve(cmd.args["set"], cmd.uid)
        if not ranges:
            return "STORE completed"
        silent = cmd.args["silent"]
        unchanged_since = cmd.args.get("unchangedsince")
        if unchanged_since is not None:
            self.enable_condstore()
        modseq, _changed, rows, modified = await call_service(
            imap_read.store_flags, sel.folder, sel.uid_ranges(ranges), cmd.args["flags"],
            cmd.args["mode"], not silent, unchanged_since,
        )
        sel.own_change(modseq)
        changed = set(_changed)
        skipped = set(modified)
        for row in rows:
            seq = sel.seq_of(row[0])
            if seq is None or row[0] in skipped:
                continue
            if silent:
                # RFC 7162 §3.1.3: even .SILENT reports the new MODSEQ of what changed.
                if self.condstore and row[0] in changed:
                    self.send(f"* {seq} FETCH (UID {row[0]} MODSEQ ({row[7]}))\r\n")
                continue
            uid = f" UID {row[0]}" if cmd.uid or self.condstore else ""
            extra = f" MODSEQ ({row[7]})" if self.condstore else ""
            self.send(f"* {seq} FETCH (FLAGS {self.flags_text(row)}{uid}{extra})\r\n")
        if modified:
            numbers = modified if cmd.uid else sorted(
                n for n in map(sel.seq_of, modified) if n is not None)
            return f"[MODIFIED {format_uid_set(numbers)}] Conditional STORE failed"
        return "STORE completed"

    async def cmd_COPY(self, cmd: Command, move: bool = False) -> str:
        sel = self.require_writable() if move else self.require_selected()
        ranges = sel.resolve(cmd.args["set"], cmd.uid)
        verb = "MOVE" if move else "COPY"
        if not ranges:
            return f"{verb} completed"
        uidvalidity, mapping = await call_service(
            _move_or_copy, self.mailbox, sel.folder, sel.uid_ranges(ranges), cmd.args["mailbox"],
            move,
        )
        code = ""
        if mapping:
            code = (
                f"[COPYUID {uidvalidity} {format_uid_set(list(mapping))} "
                f"{format_uid_set(list(mapping.values()))}] "
            )
        if not move:
            return f"{code}COPY completed"
        # RFC 6851 §4.3: COPYUID in an untagged OK, then the EXPUNGEs, then the tagged OK.
        if code:
            self.send(f"* OK {code}Moved\r\n")
        self.send_expunged(list(mapping))  # VANISHED with QRESYNC (RFC 6851 §4.3, RFC 7162)
        return "MOVE completed"

    async def cmd_MOVE(self, cmd: Command) -> str:
        return await self.cmd_COPY(cmd, move=True)

    async def cmd_FETCH(self, cmd: Command) -> str:
        sel = self.require_selected()
        ranges = sel.resolve(cmd.args["set"], cmd.uid)
        atts: list[FetchAtt] = list(cmd.args["atts"])
        if cmd.uid and not any(att.name == "UID" for att in atts):
            atts.insert(0, FetchAtt("UID"))
        changed_since = cmd.args.get("changedsince")
        if changed_since is not None or any(att.name == "MODSEQ" for att in atts):
            self.enable_condstore()
            if not any(att.name == "MODSEQ" for att in atts):
                atts.append(FetchAtt("MODSEQ"))  # RFC 7162 §3.1.4.1
        if cmd.args.get("vanished"):
            # RFC 7162 §3.2.6: UID FETCH (CHANGEDSINCE m VANISHED) needs QRESYNC enabled.
            if not self.qresync:
                raise Reply("BAD", "ENABLE QRESYNC first")
            largest = max(sel.uids[-1] if sel.uids else 0, sel.folder.uidnext - 1, 1)
            wanted = UidRanges(tuple(cmd.args["set"].resolve(largest)))
            vanished = await call_service(
                imap_read.vanished_since, sel.folder.pk, changed_since, wanted
            )
            if vanished:
                self.send(f"* VANISHED (EARLIER) {format_uid_set(vanished)}\r\n")
        if not ranges:
            return "FETCH completed"
        names = {att.name for att in atts}
        needs_blob = any(att.needs_blob for att in atts)
        seen_now: set[int] = set()
        if not sel.readonly and any(att.sets_seen for att in atts):
            # §6.4.5: a non-peek body fetch sets \Seen; the new flags go out with the data.
            modseq, changed, _rows, _modified = await call_service(
                imap_read.store_flags, sel.folder, sel.uid_ranges(ranges), ["\\Seen"], "add",
                False,
            )
            sel.own_change(modseq)
            seen_now = set(changed)
        if seen_now and "FLAGS" not in names:
            atts.append(FetchAtt("FLAGS"))
            names.add("FLAGS")
            if self.condstore and "MODSEQ" not in names:
                atts.append(FetchAtt("MODSEQ"))  # RFC 7162 §3.1: flag updates carry MODSEQ
                names.add("MODSEQ")
        columns: list[str] = []
        if "FLAGS" in names:
            columns.extend(imap_read.FLAG_COLUMNS)
        if "ENVELOPE" in names:
            columns.append("envelope")
        if "INTERNALDATE" in names:
            columns.append("internal_date")
        if "RFC822.SIZE" in names or needs_blob:
            columns.append("size")
        if "BODY" in names or "BODYSTRUCTURE" in names or needs_blob:
            columns.append("structure")
        if needs_blob:
            columns.append("blob_id")
        if "MODSEQ" in names:
            columns.append("modseq")
        index = {name: i + 1 for i, name in enumerate(columns)}
        uids = sel.uids
        for i0, i1 in ranges:
            for start in range(i0, i1 + 1, FETCH_CHUNK):
                end = min(i1, start + FETCH_CHUNK - 1)
                rows = await call_service(
                    imap_read.fetch_rows, sel.folder.pk, uids[start], uids[end], tuple(columns),
                    changed_since,
                )
                if needs_blob:
                    await self._fetch_with_blobs(sel, rows, atts, index, seen_now)
                else:
                    self._fetch_format(sel, rows, atts, index, seen_now, None)
                await self.flush()
        return "FETCH completed"

    async def _fetch_with_blobs(self, sel, rows, atts, index, seen_now) -> None:
        size_i, sha_i = index["size"], index["blob_id"]
        batch: list = []
        batch_bytes = 0
        for row in rows + [None]:
            if row is not None and (not batch or batch_bytes + row[size_i] <= BLOB_BATCH_BYTES):
                batch.append(row)
                batch_bytes += row[size_i]
                continue
            if batch:
                blobs = await call_service(
                    imap_read.load_blobs, list({r[sha_i] for r in batch})
                )
                self._fetch_format(sel, batch, atts, index, seen_now, blobs)
                await self.flush()
            if row is not None:
                batch, batch_bytes = [row], row[size_i]

    def _fetch_format(self, sel, rows, atts, index, seen_now, blobs) -> None:
        out = []
        uids = sel.uids
        n = len(uids)
        for row in rows:
            uid = row[0]
            i = bisect_left(uids, uid)
            if i >= n or uids[i] != uid:
                continue
            items: list = []
            raw = blobs.get(row[index["blob_id"]]) if blobs is not None else None
            for att in atts:
                name = att.name
                if name == "UID":
                    items.append(f"UID {uid}")
                elif name == "FLAGS":
                    items.append("FLAGS " + self.flags_text(row, index["seen"]))
                elif name == "ENVELOPE":
                    items.append("ENVELOPE " + fmt.envelope(row[index["envelope"]]))
                elif name == "INTERNALDATE":
                    items.append("INTERNALDATE " + fmt.internaldate(row[index["internal_date"]]))
                elif name == "RFC822.SIZE":
                    items.append(f"RFC822.SIZE {row[index['size']]}")
                elif name == "BODYSTRUCTURE":
                    items.append("BODYSTRUCTURE " + fmt.body_structure(row[index["structure"]]))
                elif name == "BODY":
                    items.append("BODY " + fmt.body_structure(row[index["structure"]], False))
                elif name == "MODSEQ":
                    items.append(f"MODSEQ ({row[index['modseq']]})")
                else:
                    items.append(self._fetch_body(att, raw, row[index["structure"]]))
            if items and all(isinstance(item, str) for item in items):
                out.append(f"* {i + 1} FETCH ({' '.join(items)})\r\n".encode("utf-8", "replace"))
            else:
                parts = [f"* {i + 1} FETCH (".encode()]
                for k, item in enumerate(items):
                    if k:
                        parts.append(b" ")
                    parts.append(item.encode("utf-8", "replace") if isinstance(item, str)
                                 else item)
                parts.append(b")\r\n")
                out.append(b"".join(parts))
        self.send(b"".join(out))

    def _fetch_body(self, att: FetchAtt, raw: bytes | None, structure: dict) -> bytes:
        if raw is None:
            raw = b""
        if att.name == "RFC822":
            return b"RFC822 " + fmt.literal(raw)
        if att.name == "RFC822.HEADER":
            return b"RFC822.HEADER " + fmt.literal(
                section_bytes(raw, structure, Section(spec="HEADER")) or b"")
        if att.name == "RFC822.TEXT":
            return b"RFC822.TEXT " + fmt.literal(
                section_bytes(raw, structure, Section(spec="TEXT")) or b"")
        data = section_bytes(raw, structure, att.section)
        label = att.response_name().encode("utf-8", "replace")
        if data is None:
            # A part that does not exist reads as empty (as Dovecot answers).
            data = b""
        if att.partial is not None:
            start, length = att.partial
            data = data[start : start + length]
        return label + b" " + fmt.literal(data)


__all__ = ["Commands", "ERRORS", "ParseError", "Reply", "error_reply", "section_bytes"]
