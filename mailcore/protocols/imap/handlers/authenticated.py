"""Commands of the authenticated state, valid in the selected state too (RFC 3501 §6.3):
SELECT/EXAMINE (with CONDSTORE and QRESYNC, RFC 7162), CREATE, DELETE, RENAME, SUBSCRIBE,
UNSUBSCRIBE (CREATE-SPECIAL-USE, RFC 6154 §3), LIST/LSUB (in :mod:`..listing`: LIST-EXTENDED,
RFC 5258; LIST-STATUS, RFC 5819; SPECIAL-USE, RFC 6154; CHILDREN, RFC 3348), STATUS, APPEND
(UIDPLUS, RFC 4315; MULTIAPPEND, RFC 3502, group-committed; literal8, RFC 3516 §4.4; UTF8 data,
RFC 6855 §4), GETQUOTA, GETQUOTAROOT and SETQUOTA (RFC 9208), COMPRESS (RFC 4978), NAMESPACE
(RFC 2342), ENABLE (RFC 5161: CONDSTORE, QRESYNC, UTF8=ACCEPT of RFC 6855, IMAP4rev2 of RFC
9051) and IDLE (RFC 2177).

An IMAP4rev2 session (RFC 9051 Appendix E) is told no \\Recent, RECENT or UNSEEN code at
SELECT, gets the selected mailbox's LIST response and ``OK [CLOSED]`` (§6.3.2), and reads and
writes mailbox names in UTF-8, as a UTF8=ACCEPT session does (RFC 6855 §3)."""

from __future__ import annotations

import asyncio
import weakref

from mailcore import exceptions as exc
from mailcore.mime.binary import NotStorable, storable
from mailcore.protocols.common.services import call_service
from mailcore.protocols.imap import parser as p
from mailcore.protocols.imap.commands import Reply, Session, format_uid_set
from mailcore.protocols.imap.compress import DeflatingWriter, InflatingReader
from mailcore.protocols.imap.extended import STATUS_ITEMS
from mailcore.protocols.imap.listing import (
    ROLE_OF_USE,
    kib,
    needs_usage,
    run_list,
    status_line,
)
from mailcore.protocols.imap.state import Selected, claim_recent
from mailcore.protocols.smtp.commit import BatchCommitter
from mailcore.services import delivery, folders, imap_read, quota
from mailcore.services.common import UidRanges


def _prepare_append(mailbox, name: str, messages: list[p.AppendMessage], max_size: int):
    """The folder and the parsed messages of one APPEND, ready for the group commit: parsing
    happens here, in a service thread of this session, not in the one commit all share."""
    try:
        folder = folders.get_folder(mailbox, name)
    except exc.FolderNotFound:
        raise Reply("NO", "[TRYCREATE] No such folder") from None
    prepared = []
    for message in messages:
        # A spooled message is read here only for the time of the store.
        raw = message.message
        raw = raw if isinstance(raw, bytes) else raw.read()
        limit = max_size
        if message.binary:
            # The limit is on what the client sends (APPENDLIMIT); base64 then adds a third.
            if len(raw) > max_size:
                raise exc.MessageTooLarge()
            try:
                raw, limit = storable(raw), None
            except NotStorable:
                raise Reply("NO", "[PARSE] NUL octets are only allowed in body parts") from None
        prepared.append(delivery.prepare_append(raw, message.flags, message.date,
                                                max_size=limit))
    return folder, delivery.AppendRequest(mailbox.pk, folder.pk, prepared)


# One APPEND group commit per event loop (the listener's), shared by all its sessions.
_COMMITTERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, BatchCommitter] = (
    weakref.WeakKeyDictionary()
)


def append_committer() -> BatchCommitter:
    """The running loop's APPEND committer: commands that finish together, from any session,
    share one transaction and one durable commit (as SMTP intake does)."""
    loop = asyncio.get_running_loop()
    committer = _COMMITTERS.get(loop)
    if committer is None:
        committer = _COMMITTERS[loop] = BatchCommitter(delivery.append_many, max_batch=32)
    return committer


def _check_new_name(name: str) -> None:
    """A new folder's name must arrive as the one modified UTF-7 spelling of it (RFC 3501
    §5.1.3): broken or non-canonical sequences and raw 8-bit octets get NO, so every client
    spells the stored name the same way."""
    if not getattr(name, "canonical", True):
        raise Reply("NO", "[CANNOT] Mailbox names are written in modified UTF-7 (RFC 3501 5.1.3)")


class AuthenticatedState(Session):
    STATES = p.AUTHENTICATED

    async def cmd_SELECT(self, cmd: p.Select) -> str:
        readonly = cmd.readonly
        if cmd.qresync is not None and not self.qresync:
            # RFC 7162 §3.2.5: QRESYNC parameters need ENABLE QRESYNC first.
            raise Reply("BAD", "ENABLE QRESYNC first")
        if self.selected is not None and (self.qresync or self.rev2):
            # RFC 7162 §3.2.11, RFC 9051 §6.3.2: the end of the previous folder's responses.
            self.send("* OK [CLOSED] Previous folder closed\r\n")
        self.deselect()
        if "CONDSTORE" in cmd.params:
            self.condstore = True  # the HIGHESTMODSEQ below is this command's answer
        snapshot = await call_service(imap_read.select_folder, self.mailbox, cmd.mailbox)
        folder = snapshot.folder
        sel = Selected(folder, readonly, snapshot.uids)
        if sel.uids:
            if readonly:
                previous = claim_recent(folder.pk, 0)
            else:
                previous = claim_recent(folder.pk, sel.uids[-1])
            sel.add_recent(previous + 1, sel.uids[-1])
        for keyword in snapshot.keywords:
            sel.keywords[keyword] = keyword
        self.selected = sel
        self.send_flag_lists()
        self.send(f"* {sel.exists} EXISTS\r\n")
        if self.rev2:
            # RFC 9051 §6.3.2: the mailbox's LIST response; no RECENT, no UNSEEN code.
            self.send(f'* LIST () "/" {self.mailbox_text(folder.name)}\r\n')
        else:
            self.send(f"* {sel.recent_count()} RECENT\r\n")
        if snapshot.first_unseen_uid is not None and not self.rev2:
            seq = sel.seq_of(snapshot.first_unseen_uid)
            if seq is not None:
                self.send(f"* OK [UNSEEN {seq}] First unseen\r\n")
        self.send(
            f"* OK [UIDVALIDITY {folder.uidvalidity}] UIDs valid\r\n"
            f"* OK [UIDNEXT {folder.uidnext}] Predicted next UID\r\n"
        )
        if self.condstore:
            self.send(f"* OK [HIGHESTMODSEQ {sel.modseq}] Highest\r\n")
        self.state = p.State.SELECTED
        if cmd.qresync is not None and cmd.qresync.uidvalidity == folder.uidvalidity:
            await self._resync(sel, cmd.qresync)
        mode = "READ-ONLY" if readonly else "READ-WRITE"
        return f"[{mode}] {'EXAMINE' if readonly else 'SELECT'} completed"

    cmd_EXAMINE = cmd_SELECT

    async def _resync(self, sel: Selected, qresync: p.QResync) -> None:
        """QRESYNC (RFC 7162 §3.2.5.1): what the client's cache as of a mod-sequence misses,
        as ``VANISHED (EARLIER)`` and FETCH FLAGS MODSEQ, limited to its known UIDs."""
        ranges = None
        if qresync.known_uids is not None:
            largest = sel.uids[-1] if sel.uids else 1
            ranges = UidRanges(tuple(qresync.known_uids.resolve(largest)))
        since = qresync.modseq
        vanished = await call_service(imap_read.vanished_since, sel.folder.pk, since, ranges)
        if vanished:
            self.send(f"* VANISHED (EARLIER) {format_uid_set(vanished)}\r\n")
        rows = await call_service(imap_read.changed_since, sel.folder.pk, since, ranges)
        self.announce_keywords(row.keywords for row in rows)
        out = []
        for row in rows:
            seq = sel.seq_of(row.uid)
            if seq is not None:
                out.append(self.flag_update(seq, row))
        self.send("".join(out))

    async def cmd_CREATE(self, cmd: p.Create) -> str:
        _check_new_name(cmd.mailbox)
        name = cmd.mailbox.rstrip("/")
        if name.upper() == "INBOX":
            raise exc.FolderExists()
        # CREATE-SPECIAL-USE (RFC 6154 §3): one folder holds one use here, and only the uses
        # LIST shows; anything else is NO [USE] and nothing is created.
        uses = {use.lower() for use in cmd.uses}
        if len(uses) > 1 or not uses <= ROLE_OF_USE.keys():
            raise exc.SpecialUseUnavailable()
        role = ROLE_OF_USE[uses.pop()] if uses else ""
        # RFC 3501 §6.3.3: CREATE does not subscribe (imaptest's subscribe script checks it).
        await call_service(folders.create_folder, self.mailbox, name, False, role)
        return "CREATE completed"

    async def cmd_DELETE(self, cmd: p.OnMailbox) -> str:
        await call_service(folders.delete_folder, self.mailbox, cmd.mailbox)
        if self.selected is not None and self.selected.folder.name == folders.canonical_name(
            cmd.mailbox
        ):
            self.deselect()
        return "DELETE completed"

    async def cmd_RENAME(self, cmd: p.Rename) -> str:
        _check_new_name(cmd.new)
        await call_service(
            folders.rename_folder, self.mailbox, cmd.old, cmd.new.rstrip("/")
        )
        return "RENAME completed"

    async def cmd_SUBSCRIBE(self, cmd: p.OnMailbox) -> str:
        subscribed = cmd.name == "SUBSCRIBE"
        await call_service(folders.subscribe_folder, self.mailbox, cmd.mailbox, subscribed)
        return f"{cmd.name} completed"

    cmd_UNSUBSCRIBE = cmd_SUBSCRIBE

    async def cmd_LIST(self, cmd: p.ListFolders) -> str:
        return await run_list(self, cmd)

    cmd_LSUB = cmd_LIST

    async def cmd_STATUS(self, cmd: p.Status) -> str:
        for item in cmd.items:
            if item not in STATUS_ITEMS:
                raise Reply("BAD", f"Unknown STATUS item {item}")
        folder, info = await call_service(imap_read.folder_status, self.mailbox, cmd.mailbox)
        usage = recent = None
        if needs_usage(cmd.items):
            usage = await call_service(quota.folder_usage, folder.pk)
        if "RECENT" in cmd.items:
            above = claim_recent(folder.pk, 0)
            counts = await call_service(imap_read.count_above, {folder.pk: above})
            recent = counts.get(folder.pk, 0)
        if "HIGHESTMODSEQ" in cmd.items:
            self.enable_condstore()  # RFC 7162 §3.1.6
        self.send(status_line(self.mailbox_text(folder.name), cmd.items, info, usage, recent))
        return "STATUS completed"

    async def cmd_APPEND(self, cmd: p.Append) -> str:
        if not all(message.message_size for message in cmd.messages):
            raise Reply("NO", "Cannot append an empty message")
        if any(message.utf8 for message in cmd.messages) and not self.utf8_accept:
            # RFC 6855 §4: the UTF8 data extension belongs to UTF8=ACCEPT, enabled first (§3).
            raise Reply("BAD", "ENABLE UTF8=ACCEPT before APPEND UTF8 (RFC 6855)")
        folder, request = await call_service(
            _prepare_append, self.mailbox, cmd.mailbox, cmd.messages,
            self.config.max_message_size,
        )
        try:
            rows = await append_committer().submit(request)
        except exc.FolderNotFound:
            raise Reply("NO", "[TRYCREATE] No such folder") from None
        sel = self.selected
        if sel is not None and sel.folder.pk == folder.pk:
            # §6.3.11: the new messages are announced as new mail would be (after the command;
            # other sessions' appends may have shared the commit, so the store is asked).
            sel.dirty = True
        uids = format_uid_set([row.uid for row in rows])
        # RFC 4315 §3: a uid-set for MULTIAPPEND (RFC 3502).
        return f"[APPENDUID {folder.uidvalidity} {uids}] APPEND completed"

    async def cmd_GETQUOTAROOT(self, cmd: p.OnMailbox) -> str:
        # RFC 9208 §4.3: one quota root, "", for all of a mailbox's folders, from the one rule
        # (services/quota.py); none when the mailbox is unlimited.
        folder = await call_service(folders.get_folder, self.mailbox, cmd.mailbox)
        current = await call_service(quota.usage, self.mailbox.pk)
        limit, used = current.limit, current.used
        name = self.mailbox_text(folder.name)
        if not limit:
            self.send(f"* QUOTAROOT {name}\r\n")
            return "GETQUOTAROOT completed"
        self.send(f'* QUOTAROOT {name} ""\r\n* QUOTA "" (STORAGE {kib(used)} {limit // 1024})\r\n')
        return "GETQUOTAROOT completed"

    async def cmd_GETQUOTA(self, cmd: p.QuotaRoot) -> str:
        current = await call_service(quota.usage, self.mailbox.pk)
        limit, used = current.limit, current.used
        if cmd.root != "" or not limit:
            raise Reply("NO", "[NONEXISTENT] No such quota root")
        self.send(f'* QUOTA "" (STORAGE {kib(used)} {limit // 1024})\r\n')
        return "GETQUOTA completed"

    async def cmd_SETQUOTA(self, cmd: p.QuotaRoot) -> str:
        # RFC 9208 §4.1.3: limits are the administrator's (webmail admin, commands).
        raise Reply("NO", "[NOPERM] Quotas are set by the administrator")

    async def cmd_COMPRESS(self, cmd: p.Compress) -> str:
        if cmd.mechanism != "DEFLATE":
            raise Reply("BAD", f"Unknown compression mechanism {cmd.mechanism}")
        if isinstance(self.writer, DeflatingWriter):
            raise Reply("NO", "[COMPRESSIONACTIVE] DEFLATE is already active")
        # RFC 4978 §3: the tagged OK is the last thing sent uncompressed; whatever the client
        # sent after the command is already compressed.
        self.send(f"{cmd.tag} OK DEFLATE active\r\n")
        await self.flush()
        self.reader = InflatingReader(self.reader, self.options.max_line + 2)
        self.writer = DeflatingWriter(self.writer)
        return ""

    async def cmd_NAMESPACE(self, cmd: p.Bare) -> str:
        self.send('* NAMESPACE (("" "/")) NIL NIL\r\n')
        return "NAMESPACE completed"

    async def cmd_ENABLE(self, cmd: p.Enable) -> str:
        # RFC 5161 §3.1: ENABLED lists what this command newly enabled; unknown names are
        # ignored. QRESYNC implies CONDSTORE (RFC 7162 §3.2.3).
        enabled = []
        for cap in dict.fromkeys(cmd.caps):
            if cap == "UTF8=ACCEPT" and not self.utf8_accept:
                self.utf8_accept = True  # RFC 6855 §3
                enabled.append(cap)
            elif cap == "IMAP4REV2" and not self.rev2:
                self.rev2 = True  # RFC 9051 §6.3.1
                enabled.append("IMAP4rev2")
            elif cap == "CONDSTORE" and not self.condstore:
                self.enable_condstore()
                enabled.append(cap)
            elif cap == "QRESYNC" and not self.qresync:
                self.enable_condstore()
                self.qresync = True
                enabled.append(cap)
        self.send("* ENABLED" + "".join(f" {cap}" for cap in enabled) + "\r\n")
        return "ENABLE completed"

    async def cmd_IDLE(self, cmd: p.Bare) -> str:
        return await self.idle(cmd)
