"""Send, Undo send, Send later and the Outbox.

Send queues the message held for the user's undo window (a few seconds) and shows a toast with
Undo; Undo takes it back from the queue and brings the compose form back as it was. Send later
holds it until the chosen time; the Outbox lists what is held, and each can be edited (taken
back into the compose form) or cancelled (back to Drafts). Delivery status, per recipient, is
shown on sent messages and refreshed while some recipient still waits."""

from datetime import timedelta

from django.contrib import messages as flash
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from mailcore.exceptions import (
    InvalidAddress,
    MailboxInactive,
    MailError,
    MessageTooLarge,
    SenderNotOwned,
    UnknownRecipient,
)
from mailcore.mime.compose import ComposeError
from mailcore.models import FolderRole
from mailcore.services import sending
from webmail import composing
from webmail.models import ComposeState, Composition
from webmail.views.common import (
    COMPOSE_TEMPLATE,
    TEMPLATE,
    error_text,
    mail_context,
    mailbox_required,
    owned_composition,
    owned_message,
    render_compose,
    render_partials,
    user_settings,
)

MAX_SCHEDULE = timedelta(days=365)
# Which compose field a refusal from the queue is about.
SEND_ERROR_FIELD = {
    SenderNotOwned: "from_addr",
    UnknownRecipient: "to",
    MailboxInactive: "to",
    InvalidAddress: "to",
    MessageTooLarge: "__all__",
}
SEND_ERROR_TEXT = {
    SenderNotOwned: "You cannot send as this address.",
    UnknownRecipient: "There is no such address here: {exc}.",
    MailboxInactive: "That mailbox does not take mail: {exc}.",
    InvalidAddress: "{exc}",
    MessageTooLarge: "The message is too large to send; remove an attachment.",
}


def _send_error(exc: MailError) -> tuple[str, str]:
    for cls in type(exc).__mro__:
        if cls in SEND_ERROR_FIELD:
            return SEND_ERROR_FIELD[cls], SEND_ERROR_TEXT[cls].format(exc=exc)
    return "__all__", error_text(exc)


def _send_time(form):
    """The chosen send-later time as an aware datetime, or an error text."""
    when = form.cleaned_data.get("send_at")
    if when is None:
        return None, "choose when to send it"
    offset = form.cleaned_data.get("tz_offset")
    if offset is not None:
        # The browser's wall-clock time: local = UTC - offset minutes.
        naive = timezone.make_naive(when) if timezone.is_aware(when) else when
        when = timezone.make_aware(naive + timedelta(minutes=offset),
                                   timezone.get_fixed_timezone(0))
    now = timezone.now()
    if when <= now:
        return None, "choose a time in the future"
    if when > now + MAX_SCHEDULE:
        return None, "choose a time within a year"
    return when, ""


def send_composition(request, composition: Composition, form, *, later: bool):
    """Check and send (or schedule) a composition the view has just filled from the form."""
    mailbox = request.mailbox
    prefs = user_settings(mailbox)
    draft, problems = composing.to_draft(composition, strict=True, mailbox=mailbox)
    errors = dict(problems.errors)
    hold_until = timezone.now() + timedelta(seconds=prefs.undo_seconds)
    if later:
        when, problem = _send_time(form)
        if problem:
            errors["send_at"] = problem
        else:
            hold_until = when
    if errors:
        return render_compose(request, composition, errors=errors, status=400)
    if (not form.cleaned_data.get("no_attachment_ok")
            and composing.mentions_attachment(composition.body)
            and not composing.has_attachments(composition)):
        return render_compose(request, composition, reminder=True, status=400)
    try:
        composing.send(composition, mailbox, draft, hold_until=hold_until, later=later)
    except ComposeError as exc:
        return render_compose(request, composition, errors={exc.field: exc.message},
                              status=400)
    except MailError as exc:
        name, text = _send_error(exc)
        return render_compose(request, composition, errors={name: text}, status=400)
    if later:
        local = timezone.localtime(hold_until)
        toast = f"Scheduled for {local:%a %d %b, %H:%M}. It will go even if you close the browser."
    else:
        toast = "Message sent."
    undo_url = reverse("webmail:compose-undo", args=[composition.pk])
    if not request.htmx:
        flash.info(request, toast)
        return redirect("webmail:outbox" if later else "webmail:index")
    context = mail_context(
        request, toast=toast, undo_url=undo_url,
        toast_seconds=prefs.undo_seconds if not later else 10,
        reader_note="Scheduled: see the Outbox." if later else "Sent.",
    )
    response = render_partials(request, ["reader", "folder-list"], context)
    toast_html = render_to_string(f"{COMPOSE_TEMPLATE}#send-toast", context, request=request)
    response.content += toast_html.encode()
    return response


@require_POST
@mailbox_required
def undo_view(request, composition_id: int):
    """Take a just-sent (or scheduled) message back and reopen its compose form."""
    composition = owned_composition(request, composition_id)
    if not composing.take_back(composition, request.mailbox):
        text = "Too late to undo: the message has left." if composition.state != \
            ComposeState.EDITING else "Nothing to undo."
        if not request.htmx:
            flash.info(request, text)
            return redirect("webmail:index")
        context = mail_context(request, toast=text)
        return render_partials(request, ["toast"], context)
    if request.htmx:
        return render_compose(request, composition, status_text="Sending undone.")
    flash.info(request, "Sending undone.")
    return redirect("webmail:compose", composition_id=composition.pk)


# --- Outbox -----------------------------------------------------------------------------------


def outbox_context(request) -> dict:
    held = sending.scheduled(request.mailbox)
    compositions = {
        c.outbound_id: c for c in Composition.objects.filter(
            mailbox=request.mailbox, outbound_id__in=[h.pk for h in held])
    }
    items = [{"entry": h, "composition": compositions.get(h.pk)} for h in held]
    return mail_context(request, outbox_view=True, outbox_items=items)


@require_GET
@mailbox_required
def outbox_view(request):
    context = outbox_context(request)
    if request.htmx:
        return render_partials(request, ["message-list", "folder-list"], context)
    return render(request, TEMPLATE, context)


def _outbox_composition(request, outbound_id: int):
    return Composition.objects.filter(
        mailbox=request.mailbox, outbound_id=outbound_id,
        state__in=(ComposeState.SCHEDULED, ComposeState.SENDING),
    ).first()


@require_POST
@mailbox_required
def outbox_edit_view(request, outbound_id: int):
    """Take a scheduled message out of the queue into the compose form."""
    composition = _outbox_composition(request, outbound_id)
    if composition is None or not composing.take_back(composition, request.mailbox):
        return _outbox_refresh(request, "Too late: the message has left.")
    return render_compose(request, composition,
                          status_text="Taken out of the Outbox; send or schedule it again.")


@require_POST
@mailbox_required
def outbox_cancel_view(request, outbound_id: int):
    """Cancel a scheduled message: it leaves the queue and goes back to Drafts."""
    composition = _outbox_composition(request, outbound_id)
    if composition is None or not composing.take_back(composition, request.mailbox):
        return _outbox_refresh(request, "Too late: the message has left.")
    return _outbox_refresh(request, "Cancelled; the message is in Drafts.")


def _outbox_refresh(request, toast: str):
    if not request.htmx:
        flash.info(request, toast)
        return redirect("webmail:outbox")
    context = outbox_context(request)
    context["toast"] = toast
    return render_partials(request, ["message-list", "folder-list", "toast", "reader"], context)


@require_GET
@mailbox_required
def status_view(request, message_id: int):
    """The delivery status block of one sent message (polled while someone still waits)."""
    message = owned_message(request, message_id)
    if message.folder.role != FolderRole.SENT:
        return HttpResponse(status=204)
    status = sending.delivery_status(request.mailbox, [message.message_id])
    context = {"message": message, "delivery": status.get(message.message_id)}
    return render(request, "webmail/outbox.html#delivery-status", context)
