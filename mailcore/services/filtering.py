"""Sieve at delivery (RFC 5228 §2.10): run each recipient's active script and carry out the
actions it returns: store in folders with flags (through the delivery and folder services),
redirect and vacation through the outbound queue, reject as an SMTP refusal when every
recipient rejects (RFC 5429 §2.1.1) or else as a bounce, discard with a trace.

A script that fails or loops never loses mail: the message is kept in INBOX and the error is
recorded for the user (RFC 5228 §2.10.6). The entry point, :func:`deliver_filtered`, is one
call for the SMTP door: it returns ``handled=False`` at the cost of one indexed query when no
recipient has a script, and the door delivers as before."""

import logging
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from mailcore import blobstore
from mailcore.exceptions import FolderExists, FolderNotFound, MailError, RejectedByFilter
from mailcore.mime.dsn import DsnRecipient, build_dsn, one_line
from mailcore.models import FilterEventKind, Folder, FolderRole, InboundVerdict, Mailbox
from mailcore.services import folders, vacation
from mailcore.services.accounts import normalize_address, resolve_recipient
from mailcore.services.delivery import Delivered, deliver_to_mailboxes, store_in_folders
from mailcore.services.filters import active_scripts, record_event
from mailcore.services.outbound.queue import address_domain, check_address, enqueue_outbound
from mailcore.sieve.actions import (
    Discard,
    FileInto,
    Keep,
    Outcome,
    Redirect,
    Reject,
    Vacation,
)
from mailcore.sieve.interpreter import Envelope, Environment, run_script
from mailcore.sieve.message import SieveMessage
from mailcore.trust import spamheader, srs

logger = logging.getLogger("correio.sieve")

# Mail queued by a script (redirect, vacation, bounce) to a local user runs that user's script
# too; past this depth it is kept in INBOX, so two scripts redirecting to each other cannot loop
# (RFC 5228 §4.2: implementations take measures against redirect loops).
MAX_NESTED_FILTERING = 3
_depth: ContextVar[int] = ContextVar("sieve_depth", default=0)


@dataclass
class RecipientPlan:
    mailbox_id: int
    address: str  # the envelope recipient the script ran for
    outcome: Outcome


SpamScore = tuple[float, float | None]  # (score, reject threshold), as spamtest scales it


@dataclass
class FilterResult:
    handled: bool
    delivered: list[Delivered] = field(default_factory=list)


def _envelope_recipients(rcpt_tos: Sequence[str], mailbox_ids: Sequence[int]) -> dict[int, str]:
    """Which envelope recipient led to each mailbox (through aliases too)."""
    result: dict[int, str] = {}
    for rcpt in rcpt_tos:
        try:
            resolution = resolve_recipient(rcpt)
        except MailError:
            continue
        for mailbox_id in resolution.mailbox_ids:
            result.setdefault(mailbox_id, normalize_address(rcpt))
    return result


def spam_source(raw: bytes, given: SpamScore | None,
                trust_header: bool) -> Callable[[], SpamScore | None]:
    """What spamtest sees (RFC 5235), looked up once and only when a script asks: the verdict
    the door has (``given``), else the one stored with this very message, else our MX's
    X-Spam-Score header when ``trust_header`` (the MX removed any copy a sender wrote), else
    None (not tested)."""
    found: list[SpamScore | None] = []

    def spam() -> SpamScore | None:
        if not found:
            found.append(_find_spam(raw, given, trust_header))
        return found[0]

    return spam


def _find_spam(raw: bytes, given: SpamScore | None, trust_header: bool) -> SpamScore | None:
    if given is not None:
        return given
    stored = (InboundVerdict.objects.filter(blob_id=blobstore.blob_id(raw), spam_scanned=True,
                                            spam_score__isnull=False)
              .values_list("spam_score", "spam_required").first())
    if stored is not None:
        return stored
    if trust_header:
        values = SieveMessage(raw).raw_values(spamheader.NAME)
        if values:
            return spamheader.parse(values[0])  # the topmost, ours
    return None


def plan(raw: bytes, mail_from: str, rcpt_tos: Sequence[str], mailbox_ids: Sequence[int],
         spam: Callable[[], SpamScore | None] = lambda: None,
         ) -> tuple[list[int], list[RecipientPlan]]:
    """(mailboxes without a script, the outcome of each recipient's script)."""
    scripts = active_scripts(mailbox_ids)
    if not scripts:
        return list(mailbox_ids), []
    # One recipient (most mail) needs no look-up; several are told apart through aliases.
    recipients = ({m: normalize_address(rcpt_tos[0]) for m in scripts} if len(rcpt_tos) == 1
                  else _envelope_recipients(rcpt_tos, list(scripts)))
    plain, planned = [], []
    for mailbox_id in mailbox_ids:
        if mailbox_id not in scripts:
            plain.append(mailbox_id)
            continue
        script = scripts[mailbox_id]
        address = recipients.get(mailbox_id, "")
        if script is None:
            outcome = Outcome([Keep()], raw, "the active script no longer compiles")
        else:
            env = Environment(now=timezone.now(),
                              mailbox_exists=lambda name, m=mailbox_id: _folder_exists(m, name),
                              spam=spam)
            outcome = run_script(script, raw, Envelope(mail_from, address), env)
        planned.append(RecipientPlan(mailbox_id, address, outcome))
    return plain, planned


def _folder_exists(mailbox_id: int, name: str) -> bool:
    mailbox = Mailbox(pk=mailbox_id)
    try:
        folders.get_folder(mailbox, name)
    except FolderNotFound:
        return False
    return True


def deliver_filtered(raw: bytes, mail_from: str, rcpt_tos: Sequence[str],
                     mailbox_ids: Sequence[int], remote: Sequence[str] = (), *,
                     refuse: bool = True, spam: SpamScore | None = None,
                     from_mx: bool = False) -> FilterResult:
    """Deliver ``raw`` to local mailboxes running their Sieve scripts, and queue it for the
    ``remote`` alias destinations, all in one transaction. ``handled=False`` (nothing done)
    when no mailbox has an active script. Raises ``RejectedByFilter`` when ``refuse`` (a door
    where the sender waits), every recipient rejects and nothing else is to be done, and what
    storing raises (``QuotaExceeded``...). ``spam`` is the door's spam verdict; ``from_mx``
    says the message came through our MX, so its X-Spam-Score header is ours."""
    depth = _depth.get()
    if depth >= MAX_NESTED_FILTERING:
        return FilterResult(handled=False)
    token = _depth.set(depth + 1)
    try:
        return _deliver_filtered(raw, mail_from, rcpt_tos, mailbox_ids, remote, refuse,
                                 spam_source(raw, spam, from_mx))
    finally:
        _depth.reset(token)


def filter_queued(raw: bytes, sender: str, rcpt_tos: Sequence[str],
                  mailbox_ids: Sequence[int]) -> list[Delivered] | None:
    """Sieve for mail the outbound queue delivers locally (submission, webmail, held mail,
    replies and redirects), registered with :func:`queue.set_local_filter`. A rejection there
    goes back as a DSN (RFC 5429 §2.1: the message is already accepted). None when no script
    changes anything: the queue delivers to INBOX itself."""
    result = deliver_filtered(raw, sender, rcpt_tos, mailbox_ids, refuse=False)
    return result.delivered if result.handled else None


def _deliver_filtered(raw: bytes, mail_from: str, rcpt_tos: Sequence[str],
                      mailbox_ids: Sequence[int], remote: Sequence[str], refuse: bool,
                      spam: Callable[[], SpamScore | None]) -> FilterResult:
    plain, planned = plan(raw, mail_from, rcpt_tos, mailbox_ids, spam)
    if all(_plain_keep(p.outcome, raw) for p in planned):
        # Most mail matches no rule: the door's usual (batched) INBOX delivery does the same.
        return FilterResult(handled=False)
    message_id = next(iter(SieveMessage(raw).raw_values("message-id")), "")
    rejections = [p.outcome.rejection for p in planned]
    if refuse and not plain and not remote and all(
        r is not None and len(p.outcome.actions) == 1 for r, p in zip(rejections, planned, strict=True)
    ):
        for item in planned:
            record_event(item.mailbox_id, FilterEventKind.REJECT,
                         f"refused at SMTP from <{mail_from}>: {item.outcome.rejection.reason}",
                         message_id=message_id)
        raise RejectedByFilter(one_line(rejections[0].reason, 400) or "message rejected")  # type: ignore[union-attr]
    result = FilterResult(handled=True)
    with transaction.atomic():
        if plain:
            result.delivered.extend(deliver_to_mailboxes(raw, plain))
        for item in planned:
            result.delivered.extend(_apply(item, raw, mail_from, message_id))
        if remote:
            enqueue_outbound(raw, _usable_sender(mail_from), remote)
    return result


def _plain_keep(outcome: Outcome, raw: bytes) -> bool:
    return (not outcome.error and outcome.actions == [Keep()]
            and (outcome.raw is raw or outcome.raw == raw))


def _usable_sender(mail_from: str) -> str:
    try:
        return check_address(mail_from, allow_null=True)
    except MailError:
        return ""


def _apply(item: RecipientPlan, original: bytes, mail_from: str,
           message_id: str) -> list[Delivered]:
    mailbox = Mailbox.objects.get(pk=item.mailbox_id)
    outcome = item.outcome
    raw = outcome.raw or original
    if outcome.error:
        record_event(mailbox.pk, FilterEventKind.ERROR, outcome.error, message_id=message_id)
    # Every copy this recipient keeps (keep, fileinto, with their flags) in one batched write.
    places: list[tuple[Folder, tuple[str, ...]]] = []
    for action in outcome.actions:
        if isinstance(action, Keep | FileInto):
            places.append((_target(mailbox, action, message_id), tuple(action.flags)))
        elif isinstance(action, Discard):
            record_event(mailbox.pk, FilterEventKind.DISCARD, f"discarded mail from <{mail_from}>",
                         message_id=message_id)
        elif isinstance(action, Redirect | Reject | Vacation):
            try:
                with transaction.atomic():
                    _side_effect(action, mailbox, original, raw, mail_from, item.address,
                                 message_id)
            except MailError as error:
                # The message itself is not lost for a failed side effect: keep it.
                logger.warning("sieve %s for mailbox %s failed: %s", type(action).__name__,
                               mailbox.pk, error)
                record_event(mailbox.pk, FilterEventKind.ERROR,
                             f"{type(action).__name__.lower()} failed: {error}; kept in INBOX",
                             message_id=message_id)
                if not any(isinstance(a, Keep) for a in outcome.actions):
                    places.append((folders.get_folder_by_role(mailbox, FolderRole.INBOX), ()))
    return store_in_folders(raw, places)


def _target(mailbox: Mailbox, action: Keep | FileInto, message_id: str):
    """The folder to store in: INBOX for keep; for fileinto the named folder, created with
    :create (RFC 5490 §3), else INBOX with a recorded error (RFC 5228 §4.1)."""
    if isinstance(action, FileInto) and action.folder.upper() != "INBOX":
        try:
            return folders.get_folder(mailbox, action.folder)
        except FolderNotFound:
            if action.create:
                try:
                    with transaction.atomic():
                        return folders.create_folder(mailbox, action.folder)
                except FolderExists:
                    return folders.get_folder(mailbox, action.folder)
                except MailError as error:
                    record_event(mailbox.pk, FilterEventKind.ERROR,
                                 f"cannot create folder {action.folder!r}: {error}; "
                                 "kept in INBOX", message_id=message_id)
            else:
                record_event(mailbox.pk, FilterEventKind.ERROR,
                             f"fileinto: no folder {action.folder!r}; kept in INBOX",
                             message_id=message_id)
    return folders.get_folder_by_role(mailbox, FolderRole.INBOX)


def _side_effect(action, mailbox: Mailbox, original: bytes, raw: bytes, mail_from: str,
                 recipient: str, message_id: str) -> None:
    if isinstance(action, Redirect):
        # RFC 5228 §4.2: the message goes on as received, with its envelope sender, rewritten
        # with SRS into the recipient's domain (mailcore/trust/srs.py) so the next hop's SPF
        # check passes and a bounce comes back here to be returned to the sender.
        sender = _usable_sender(mail_from)
        if sender:
            sender = srs.forward(sender, address_domain(recipient or mailbox.address),
                                 settings.SECRET_KEY)
        result = enqueue_outbound(original, sender, [action.address],
                                  mailbox=mailbox, enforce_quota=False)
        record_event(mailbox.pk, FilterEventKind.REDIRECT, f"redirected to {action.address}",
                     message_id=message_id, outbound_id=result.outbound_id)
    elif isinstance(action, Vacation):
        vacation.respond(mailbox, raw, mail_from, recipient or mailbox.address, action)
    else:
        _bounce(action, mailbox, original, mail_from, recipient, message_id)


def _bounce(action: Reject, mailbox: Mailbox, original: bytes, mail_from: str,
            recipient: str, message_id: str) -> None:
    """RFC 5429 §2.1/§2.2: a rejection decided after the SMTP transaction goes back to the
    sender as a DSN, from the null sender (never to the null sender)."""
    outbound_id = None
    sender = _usable_sender(mail_from)
    if sender:
        now = timezone.now()
        dsn = build_dsn(
            reporting_mta=settings.CORREIO_HOSTNAME, sender=sender, original=original,
            arrival=now, now=now,
            recipients=[DsnRecipient(address=recipient or mailbox.address, action="failed",
                                     status="5.7.1",
                                     diagnostic=f"550 5.7.1 {one_line(action.reason)}")],
        )
        outbound_id = enqueue_outbound(dsn, "", [sender], enforce_quota=False).outbound_id
    record_event(mailbox.pk, FilterEventKind.REJECT,
                 f"rejected mail from <{mail_from}>: {one_line(action.reason)}",
                 message_id=message_id, outbound_id=outbound_id)
