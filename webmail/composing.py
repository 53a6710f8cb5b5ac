"""Writing mail in the webmail: compositions started blank, as a reply, reply-all or forward of a
message, or reopened from a draft; and turning a composition into a
:class:`mailcore.mime.compose.Draft` for the MIME builder.

A composition keeps the fields exactly as typed. Strict conversion (for Send) reports every bad
field; lenient conversion (for the copy saved in Drafts) keeps what it can, so autosave never
refuses to keep someone's text. Replies follow RFC 5322 §3.6.3 (who) and §3.6.4 (In-Reply-To,
References); the signature goes under the RFC 3676 §4.3 separator "-- ".

This module also owns every change of a composition's state (what was typed, its copy in
Drafts, sent or scheduled, taken back, discarded, its attachments): the compose and sending
views only check ownership, call one function here and render."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from mailcore.blobstore import load_blob
from mailcore.exceptions import MailError
from mailcore.mime.addresses import envelope_to_pairs, parse_address_list
from mailcore.mime.compose import (
    Attachment,
    ComposeError,
    Draft,
    build_message,
    forward_subject,
    forward_text,
    parse_recipients,
    quote_text,
    reply_recipients,
    reply_references,
    reply_subject,
)
from mailcore.mime.html_text import html_to_plain
from mailcore.mime.parse import html_to_text, parse_message, part_text
from mailcore.models import Mailbox, Message
from mailcore.services import sending
from mailcore.services.accounts import owned_addresses
from mailcore.services.drafts import discard_draft, save_draft
from webmail import contacts, reading, rich_text
from webmail import identities as from_identities
from webmail.models import ComposeState, Composition, Upload, WebmailSettings

RECIPIENT_FIELDS = ("to", "cc", "bcc")
# Words that say something is attached, in the languages our users write (English, Portuguese,
# Spanish, French, German).
_MENTIONS_ATTACHMENT = re.compile(
    r"\b(attach(ed|ing|ment|ments)?|enclosed|anexo|anexa(do|da|dos|das)?|adjunt[oa]s?|"
    r"pi[eè]ce[s]? jointe[s]?|joint|anhang|angeh[äa]ngt)\b",
    re.IGNORECASE,
)
MAX_QUOTED = 200_000
MAX_FORWARDED_ATTACHMENTS = 20


def new_message_id() -> str:
    return f"<{secrets.token_hex(12)}@{settings.CORREIO_HOSTNAME}>"


def identities(mailbox: Mailbox) -> list[str]:
    """The addresses the user may send as, the mailbox's own first."""
    return from_identities.addresses(mailbox)


def _signature(mailbox: Mailbox, prefs: WebmailSettings, from_addr: str) -> str:
    return from_identities.identity_for(mailbox, prefs, from_addr).signature


def default_identity(mailbox: Mailbox, prefs: WebmailSettings) -> str:
    if prefs.default_identity and prefs.default_identity in identities(mailbox):
        return prefs.default_identity
    return mailbox.address


def format_pairs(pairs: list[tuple[str, str]]) -> str:
    """Addresses as a person would type them: ``Ann Lee <ann@x.org>, bob@y.org``."""
    out = []
    for name, addr in pairs:
        if not name:
            out.append(addr)
        elif re.search(r'[,;<>"@()\[\]:\\]', name):
            escaped = name.replace("\\", "\\\\").replace('"', '\\"')
            out.append(f'"{escaped}" <{addr}>')
        else:
            out.append(f"{name} <{addr}>")
    return ", ".join(out)


def with_signature(text: str, signature: str) -> str:
    signature = signature.strip("\n")
    if not signature:
        return text
    return f"\n\n-- \n{signature}\n{text}"


def _original_text(message: Message, raw: bytes) -> str:
    html_part, plain = reading.body_parts(message.structure)
    if plain is not None:
        return part_text(raw, plain)[:MAX_QUOTED]
    if html_part is not None:
        text = html_to_text(part_text(raw, html_part))
        return re.sub(r"[ \t]+", " ", re.sub(r"\n\s*\n+", "\n\n", text)).strip()[:MAX_QUOTED]
    return ""


def _pairs(message: Message, index: int) -> list[tuple[str, str]]:
    return envelope_to_pairs(message.envelope[index]) if message.envelope else []


def start(mailbox: Mailbox, prefs: WebmailSettings, **fields) -> Composition:
    """A new blank composition (``to``/``subject`` may be given, as by a mailto: link)."""
    _forget_abandoned(mailbox)
    from_addr = default_identity(mailbox, prefs)
    return Composition.objects.create(
        mailbox=mailbox,
        from_addr=from_addr,
        body=with_signature("", _signature(mailbox, prefs, from_addr)),
        message_id=new_message_id(),
        **_rich_start(mailbox, prefs, from_addr, ""),
        **fields,
    )


def start_reply(mailbox: Mailbox, prefs: WebmailSettings, original: Message, *,
                reply_all: bool) -> Composition:
    raw = load_blob(original.blob_id)
    to, cc = reply_recipients(
        from_=_pairs(original, 2), reply_to=_pairs(original, 4), to=_pairs(original, 5),
        cc=_pairs(original, 6), own_addresses=owned_addresses(mailbox), reply_all=reply_all,
    )
    author = original.from_name or original.from_addr or "someone"
    quoted = quote_text(_original_text(original, raw), author, original.date)
    own = identities(mailbox)
    # Answer from the address the message was sent to, when that is one of ours.
    received_as = next(
        (addr.lower() for _, addr in [*_pairs(original, 5), *_pairs(original, 6)]
         if addr.lower() in own), None,
    )
    _forget_abandoned(mailbox)
    from_addr = received_as or default_identity(mailbox, prefs)
    return Composition.objects.create(
        mailbox=mailbox,
        from_addr=from_addr,
        to=format_pairs(to),
        cc=format_pairs(cc),
        subject=reply_subject(original.subject),
        body=with_signature(quoted, _signature(mailbox, prefs, from_addr)),
        in_reply_to=original.message_id,
        references=" ".join(reply_references(original.message_id, original.references.split())),
        replied=original,
        replied_was_answered=original.answered,
        message_id=new_message_id(),
        **_rich_start(mailbox, prefs, from_addr, rich_text.quote_original_html(
            original, raw, author, original.date.strftime("%d %b %Y %H:%M")
            if original.date else "") if prefs.compose_html else ""),
    )


def start_forward(mailbox: Mailbox, prefs: WebmailSettings, original: Message, *,
                  as_attachment: bool) -> Composition:
    raw = load_blob(original.blob_id)
    _forget_abandoned(mailbox)
    composition = Composition(
        mailbox=mailbox,
        from_addr=default_identity(mailbox, prefs),
        subject=forward_subject(original.subject),
        message_id=new_message_id(),
        # A forward stays in the conversation for the sender (RFC 5322 §3.6.4 allows it).
        references=" ".join(reply_references(original.message_id, original.references.split())),
    )
    if as_attachment:
        composition.forwarded = original
        composition.body = with_signature(
            "", _signature(mailbox, prefs, composition.from_addr))
        for name, value in _rich_start(mailbox, prefs, composition.from_addr, "").items():
            setattr(composition, name, value)
        composition.save()
        return composition
    sender = format_pairs(_pairs(original, 2)) or original.from_addr
    text = forward_text(
        _original_text(original, raw), from_=sender, date=original.date,
        subject=original.subject, to=format_pairs(_pairs(original, 5)),
    )
    composition.body = with_signature(text, _signature(mailbox, prefs, composition.from_addr))
    for name, value in _rich_start(mailbox, prefs, composition.from_addr,
                                   rich_text.text_to_html(text)).items():
        setattr(composition, name, value)
    composition.save()
    # The original's attachments go along with an inline forward.
    for info in reading.attachments(original.structure)[:MAX_FORWARDED_ATTACHMENTS]:
        part = reading.get_part(original.structure, info.section)
        if part is None:
            continue
        data = reading.part_bytes(raw, part)
        Upload.objects.create(composition=composition, filename=info.filename,
                              content_type=info.content_type, size=len(data), data=data)
    return composition


def start_from_draft(mailbox: Mailbox, draft: Message) -> Composition:
    """Reopen a message of Drafts: the composition that saved it if it is still there (with the
    text exactly as typed), else one read back from the message (saved by an IMAP client)."""
    if draft.message_id:
        existing = Composition.objects.filter(
            mailbox=mailbox, message_id=draft.message_id, state=ComposeState.EDITING
        ).order_by("-pk").first()
        if existing is not None:
            if existing.draft_uid != draft.uid:
                existing.draft_uid = draft.uid
                existing.save(update_fields=["draft_uid", "updated"])
            return existing
    raw = load_blob(draft.blob_id)
    parsed = parse_message(raw)
    _, plain = reading.body_parts(draft.structure)
    own = identities(mailbox)
    from_addr = next((a.lower() for _, a in parsed.from_ if a.lower() in own), mailbox.address)
    composition = Composition.objects.create(
        mailbox=mailbox,
        from_addr=from_addr,
        to=format_pairs(parsed.to),
        cc=format_pairs(parsed.cc),
        bcc=format_pairs(parsed.bcc),
        subject=parsed.subject,
        body=part_text(raw, plain).replace("\r\n", "\n") if plain is not None else "",
        in_reply_to=parsed.in_reply_to,
        references=" ".join(parsed.references),
        message_id=draft.message_id or new_message_id(),
        draft_uid=draft.uid,
    )
    for info in reading.attachments(draft.structure):
        part = reading.get_part(draft.structure, info.section)
        if part is not None:
            data = reading.part_bytes(raw, part)
            Upload.objects.create(composition=composition, filename=info.filename,
                                  content_type=info.content_type, size=len(data), data=data)
    return composition


def _forget_abandoned(mailbox: Mailbox) -> None:
    """Compositions opened and left without a word typed (never saved) go after a day."""
    cutoff = timezone.now() - timezone.timedelta(days=1)
    Composition.objects.filter(
        mailbox=mailbox, state=ComposeState.EDITING, draft_uid__isnull=True, updated__lt=cutoff
    ).delete()


# --- To the MIME builder ------------------------------------------------------------------------


@dataclass
class Problems:
    """Field name -> what is wrong with it."""

    errors: dict

    def __bool__(self) -> bool:
        return bool(self.errors)


def _lenient_pairs(text: str) -> list[tuple[str, str]]:
    pairs = parse_address_list(text.replace("\r", " ").replace("\n", " "))
    good = []
    for name, addr in pairs:
        try:
            good.append((name.replace("\x00", ""), parse_recipients("x", addr)[0][1]))
        except (ComposeError, IndexError):
            continue
    return good


def to_draft(composition: Composition, *, strict: bool, mailbox: Mailbox) -> tuple[Draft, Problems]:
    """The composition as a MIME ``Draft``. ``strict``: every problem is reported (and the
    draft must not be sent); otherwise bad addresses are left out and line breaks in one-line
    fields become spaces, so a draft can always be saved."""
    errors: dict[str, str] = {}
    recipients = {}
    for name in RECIPIENT_FIELDS:
        text = getattr(composition, name)
        if strict:
            try:
                recipients[name] = parse_recipients(name, text)
            except ComposeError as exc:
                errors[name] = exc.message
                recipients[name] = []
        else:
            recipients[name] = _lenient_pairs(text)
    subject = composition.subject
    if any(ch in subject for ch in "\r\n\x00"):
        if strict:
            errors["subject"] = "line breaks are not allowed here"
        subject = " ".join(subject.replace("\x00", "").split())
    from_addr = composition.from_addr
    if from_addr not in identities(mailbox):
        if strict:
            errors["from_addr"] = "choose one of your own addresses"
        from_addr = mailbox.address
    if strict and not any(recipients.values()) and "to" not in errors:
        errors["to"] = "add at least one recipient"
    attachments = [
        Attachment(u.filename, u.content_type, bytes(u.data))
        for u in composition.uploads.all()
    ]
    forwarded = []
    if composition.forwarded_id:
        original = Message.objects.filter(pk=composition.forwarded_id, mailbox=mailbox).first()
        if original is not None:
            forwarded.append(load_blob(original.blob_id))
    draft = Draft(
        from_addr=from_addr,
        from_name=from_identities.identity_for(
            mailbox, WebmailSettings(mailbox=mailbox), from_addr).display_name,
        to=recipients["to"],
        cc=recipients["cc"],
        bcc=recipients["bcc"],
        subject=subject,
        text=composition.body,
        attachments=attachments,
        forwarded=forwarded,
        in_reply_to=composition.in_reply_to,
        references=composition.references.split(),
        message_id=composition.message_id,
    )
    if composition.rich:
        try:
            rich = rich_text.to_mime(composition.body_html)
        except rich_text.RichTextError as exc:
            if strict:
                errors["body"] = exc.message
        else:
            draft.html, draft.text, draft.inline_images = rich.html, rich.text, rich.images
    return draft, Problems(errors)


def content_hash(composition: Composition) -> str:
    """Changes when anything a draft would show changes (fields and attachments)."""
    digest = hashlib.sha256()
    for value in (composition.from_addr, composition.to, composition.cc, composition.bcc,
                  composition.subject, composition.body, str(composition.forwarded_id),
                  composition.body_html):
        digest.update(value.encode("utf-8", "replace") + b"\0")
    digest.update(repr(list(composition.uploads.values_list("pk", flat=True))).encode())
    return digest.hexdigest()


def mentions_attachment(text: str) -> bool:
    """The text the user wrote (not quoted lines, not a forwarded block, not the signature)
    speaks of an attachment."""
    own = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith("-- ") and line.strip() == "--":
            break
        if line.startswith("---------- Forwarded message"):
            break
        if line.startswith(">") or re.match(r"^On .* wrote:$", line):
            continue
        own.append(line)
    return bool(_MENTIONS_ATTACHMENT.search("\n".join(own)))


def has_attachments(composition: Composition) -> bool:
    return bool(composition.forwarded_id) or composition.uploads.exists()


# --- State changes ------------------------------------------------------------------------------
# Every change of a composition's state (typed fields, the copy in Drafts, sent, taken back,
# discarded, attachments) happens here; the views check ownership, call one of these, render.


class AttachmentRefused(Exception):
    """An upload that would break a limit; ``message`` is for the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def attachment_limit() -> int:
    """What the attachments may weigh together: base64 grows data by a third, and the whole
    message must stay under the size limit (a little room left for headers and text)."""
    return max(0, settings.CORREIO_MAX_MESSAGE_SIZE * 3 // 4 - 64 * 1024)


def _rich_start(mailbox: Mailbox, prefs: WebmailSettings, from_addr: str,
                quoted_html: str) -> dict:
    """The rich-text fields of a new composition: the identity's signature (its HTML one, or
    the plain one) under the RFC 3676 §4.3 separator, then what is quoted."""
    if not prefs.compose_html:
        return {}
    signature = from_identities.identity_for(mailbox, prefs, from_addr).html_signature()
    html = "<p><br></p>"
    if signature:
        html += f"<p>-- <br>{signature}</p>"
    return {"rich": True, "body_html": html + quoted_html}


def fill(composition: Composition, data: dict, *, save: bool = True) -> None:
    """Copy what was typed (a compose form's cleaned data) into the composition. Line ends as
    the browser sent them become plain ``\\n``; the MIME layer writes CRLF. Rich text is kept
    as the browser sent it (so nothing is lost when Send refuses it), its text made from its
    cleaned form; without the editor running (no script), the plain text is what counts."""
    for name in ("to", "cc", "bcc", "subject"):
        setattr(composition, name, data.get(name) or "")
    composition.from_addr = data.get("from_addr") or composition.from_addr
    composition.body = (data.get("body") or "").replace("\r\n", "\n").replace("\r", "\n")
    composition.rich = bool(data.get("rich_active"))
    if composition.rich:
        composition.body_html = data.get("body_html") or ""
        composition.body = html_to_plain(rich_text.clean(composition.body_html))
    if save:
        composition.save()


def save_to_drafts(composition: Composition, mailbox: Mailbox):
    """Save the composition to Drafts if it changed since the last save; the time it was saved,
    or None when nothing changed. Raises what ``save_draft`` raises (``QuotaExceeded``...) and
    ``ComposeError``; the composition row keeps the text either way."""
    digest = content_hash(composition)
    if digest == composition.saved_hash and composition.draft_uid:
        composition.save()
        return None
    draft, _ = to_draft(composition, strict=False, mailbox=mailbox)
    raw = build_message(draft, hostname=settings.CORREIO_HOSTNAME, include_bcc=True)
    message = save_draft(mailbox, raw, replace_uid=composition.draft_uid)
    composition.draft_uid = message.uid
    composition.saved_hash = digest
    composition.saved_at = timezone.now()
    composition.save()
    return composition.saved_at


def send(composition: Composition, mailbox: Mailbox, draft: Draft, *, hold_until,
         later: bool) -> None:
    """Queue the checked ``draft`` of this composition, held until ``hold_until`` (the undo
    window, or the "send later" time), and mark the composition sent or scheduled. Raises what
    :func:`mailcore.services.sending.send_draft` raises; then nothing changes."""
    result = sending.send_draft(
        mailbox, draft, hold_until=hold_until, draft_uid=composition.draft_uid,
        answered=composition.replied if composition.replied_id else None,
    )
    composition.state = ComposeState.SCHEDULED if later else ComposeState.SENDING
    composition.outbound_id = result.outbound_id
    composition.send_at = hold_until if later else None
    composition.draft_uid = None
    composition.saved_hash = ""
    composition.save()
    contacts.remember_recipients(mailbox, [*draft.to, *draft.cc, *draft.bcc])


def take_back(composition: Composition, mailbox: Mailbox) -> bool:
    """Undo a send (or cancel a scheduled one) while the queue still holds it: the composition
    is being written again, with its copy back in Drafts. False when it has left."""
    if composition.state not in (ComposeState.SENDING, ComposeState.SCHEDULED):
        return False
    unanswer = None
    if composition.replied_id and not composition.replied_was_answered:
        unanswer = Message.objects.filter(pk=composition.replied_id,
                                          mailbox=mailbox).select_related("folder").first()
    if not sending.take_back(mailbox, composition.outbound_id,
                             message_id=composition.message_id, unanswer=unanswer):
        return False
    composition.state = ComposeState.EDITING
    composition.outbound_id = None
    composition.save()
    try:
        save_to_drafts(composition, mailbox)
    except (MailError, ComposeError):
        pass  # the text is in the composition; the Drafts copy follows at the next save
    return True


def discard(composition: Composition, mailbox: Mailbox) -> None:
    """Drop a composition being written, and its copy in Drafts."""
    if composition.state == ComposeState.EDITING:
        discard_draft(mailbox, composition.draft_uid)
        composition.delete()


def attach(composition: Composition, files, *, max_uploads: int) -> None:
    """Add uploaded files; ``AttachmentRefused`` at the first one over a limit (those before
    it stay attached)."""
    used = sum(composition.uploads.values_list("size", flat=True))
    count = composition.uploads.count()
    limit = attachment_limit()
    for upload in files:
        if count >= max_uploads:
            raise AttachmentRefused(f"At most {max_uploads} attachments.")
        if used + upload.size > limit:
            raise AttachmentRefused(
                f"{reading.clean_filename(upload.name)} is too large: attachments may total "
                f"{filesizeformat(limit)}.")
        data = upload.read()
        Upload.objects.create(
            composition=composition,
            filename=reading.clean_filename(upload.name or "attachment"),
            content_type=(upload.content_type or "application/octet-stream")[:255],
            size=len(data),
            data=data,
        )
        used += len(data)
        count += 1
    composition.save(update_fields=["updated"])


def detach(composition: Composition, upload_id: int) -> None:
    """Remove one upload; ``0`` removes the forwarded message attached whole."""
    if upload_id == 0:
        composition.forwarded = None
        composition.save(update_fields=["forwarded", "updated"])
    else:
        Upload.objects.filter(pk=upload_id, composition=composition).delete()


# A mailbox has at most this many messages being written: starting one drops the oldest.
MAX_OPEN_COMPOSITIONS = 20


def make_room(mailbox) -> None:
    """Drop the least recently touched compositions beyond the limit (a saved draft stays in
    Drafts and reopens from there), so that starting messages cannot pile up uploads."""
    stale = list(
        Composition.objects.filter(mailbox=mailbox, state=ComposeState.EDITING)
        .order_by("-updated", "-id")
        .values_list("id", flat=True)[MAX_OPEN_COMPOSITIONS - 1 :]
    )
    if stale:
        Composition.objects.filter(pk__in=stale).delete()
