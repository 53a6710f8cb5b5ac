"""The rows of the message list, as HTML: one message, or one conversation (webmail.conversations).

They are the bulk of every list page (50 rows, a dozen fields each) and of the live updates. Drawn
by Django's template engine, a row cost about as much as everything else on the page together
(each ``{{ }}`` is a context lookup, a filter chain and an escape), which alone kept the list over
its time budget at 100,000 messages (issue 16). Here each row is one f-string with every
mail-derived value escaped by :func:`html.escape` (what the template's autoescaping calls);
the templates call :func:`rows_html` and :func:`message_row` through the ``{% message_rows %}``
and ``{% message_row %}`` tags (``webmail_tags``), so this module is the one place a row is
drawn.
"""

from __future__ import annotations

from datetime import datetime
from html import escape  # what django.utils.html.escape does, without its lazy-string wrapper

from django.urls import get_script_prefix, reverse
from django.utils import timezone

ATTACH_MARK = (
    '<span class="mark attach" title="Has attachments"><svg class="icon" viewBox="0 0 24 24" '
    'width="13" height="13" aria-hidden="true" focusable="false"><path d="M21.4 11.1l-9.2 9.2a6 '
    '6 0 0 1-8.5-8.5l9.2-9.2a4 4 0 0 1 5.7 5.7l-9.2 9.2a2 2 0 0 1-2.8-2.8l8.5-8.5"/></svg>'
    '<span class="visually-hidden">attachment</span></span>'
)
CONVERSATION_ATTACH_MARK = (
    '<span class="mark attach" title="Has attachments">📎'
    '<span class="visually-hidden">attachment</span></span>'
)
FLAG_MARK = '<span class="mark flag" title="Flagged">★<span class="visually-hidden">flagged</span></span>'

_MARKER = 987654321
_patterns: dict[tuple[str, str], tuple[str, str]] = {}


def url_pattern(view_name: str) -> tuple[str, str]:
    """The path of ``view_name`` for one message id as (before the id, after it): the URL
    resolver once per view and script prefix rather than once per row."""
    key = (view_name, get_script_prefix())
    found = _patterns.get(key)
    if found is None:
        before, _, after = reverse(view_name, args=[_MARKER]).partition(str(_MARKER))
        found = _patterns[key] = (before, after)
    return found


def id_url(pattern: tuple[str, str], pk: int) -> str:
    return f"{pattern[0]}{int(pk)}{pattern[1]}"


class DateLabels:
    """``short_date`` for many rows: the current day and year are read once."""

    def __init__(self):
        self.now = timezone.localtime()

    def short(self, value: datetime | None) -> str:
        """Time for today's mail, day and month for this year's, else the full date."""
        if not value:
            return ""
        local = timezone.localtime(value)
        if local.date() == self.now.date():
            return local.strftime("%H:%M")
        if local.year == self.now.year:
            return local.strftime("%d %b").lstrip("0")
        return local.strftime("%Y-%m-%d")

    @staticmethod
    def iso(value: datetime | None) -> str:
        """What ``{{ value|date:'c' }}`` gives: ISO 8601 in the current time zone."""
        return timezone.localtime(value).isoformat() if value else ""


def sender_label(message, sent_view: bool = False) -> str:
    if sent_view:
        return "To: " + (message.to_addrs or "(no recipient)")
    return message.from_name or message.from_addr or "(unknown sender)"


class RowContext:
    """What rows need from the page's context, read once per list."""

    def __init__(self, context):
        current = context.get("message")
        self.current_pk = getattr(current, "pk", None) if current else None
        self.sent_view = bool(context.get("sent_view"))
        self.badges = context.get("badges") or None
        self.folder_names = (context.get("folder_names") or {}) \
            if context.get("searching") and context.get("scope") == "all" else None
        self.oob = bool(context.get("row_oob") or context.get("oob"))
        self.conversations = context.get("conversations")
        self.dates = DateLabels()
        self.message_url = url_pattern("webmail:message")
        self.conversation_url = url_pattern("webmail:conversation")


def message_row(m, rc: RowContext) -> str:
    subject = escape(m.subject or "(no subject)")
    url = id_url(rc.message_url, m.pk)
    classes = "row"
    if not m.seen:
        classes += " unread"
    if m.flagged:
        classes += " flagged"
    if rc.current_pk is not None and rc.current_pk == m.pk:
        classes += " current"
    marks = ""
    if rc.badges:
        badge = rc.badges.get(m.message_id)
        if badge:
            badge = escape(badge)
            marks += f'<span class="delivery-badge state-{badge}">{badge}</span>'
    if m.has_attachments:
        marks += ATTACH_MARK
    if rc.folder_names is not None:
        name = rc.folder_names.get(m.folder_id)
        marks += f'<span class="in-folder">{escape(name) if name is not None else "None"}</span>'
    if m.flagged:
        marks += FLAG_MARK
    if not m.seen:
        marks += '<span class="visually-hidden">unread</span>'
    oob = ' hx-swap-oob="true"' if rc.oob else ""
    return (
        f'\n<li id="row-{int(m.folder_id)}-{int(m.uid)}" class="{classes}" data-id="{int(m.pk)}"'
        f' draggable="true"{oob}>\n'
        f'  <input type="checkbox" class="select" name="ids" value="{int(m.pk)}" form="list-form"'
        f' aria-label="Select: {subject}">\n'
        f'  <a class="open" href="{url}" hx-get="{url}" hx-target="#reader" hx-swap="outerHTML"'
        f' hx-push-url="true">\n'
        f'    <span class="from">{escape(sender_label(m, rc.sent_view))}</span>\n'
        f'    <time class="date" datetime="{rc.dates.iso(m.internal_date)}">'
        f'{escape(rc.dates.short(m.internal_date))}</time>\n'
        f'    <span class="subject">{subject}</span>\n'
        f'    <span class="marks">{marks}</span>\n'
        f'    <span class="preview">{escape(m.preview)}</span>\n'
        f'  </a>\n</li>\n'
    )


def conversation_row(m, rc: RowContext) -> str:
    """The row of the conversation standing at message ``m`` (its newest in the folder)."""
    conv = (rc.conversations or {}).get(m.pk)
    count = conv.count if conv else 0
    unread = conv.unread if conv else 0
    flagged = conv.flagged if conv else False
    subject = escape(m.subject or "(no subject)")
    url = id_url(rc.conversation_url, m.pk)
    classes = "row conversation"
    if unread:
        classes += " unread"
    if flagged:
        classes += " flagged"
    if rc.current_pk is not None and rc.current_pk == m.pk:
        classes += " current"
    senders = ", ".join(escape(who) for who in conv.senders) if conv else ""
    if count > 1:
        senders += (f' <span class="conv-count" title="{int(count)} messages">'
                    f'{int(count)}</span>')
    marks = ""
    if conv and conv.has_attachments:
        marks += CONVERSATION_ATTACH_MARK
    if flagged:
        marks += FLAG_MARK
    if unread:
        marks += f'<span class="visually-hidden">{int(unread)} unread</span>'
    oob = ' hx-swap-oob="true"' if rc.oob else ""
    return (
        f'\n<li id="row-{int(m.folder_id)}-{int(m.uid)}" class="{classes}" data-id="{int(m.pk)}"'
        f' data-count="{int(count)}" draggable="true"{oob}>\n'
        f'  <input type="checkbox" class="select" name="ids" value="{int(m.pk)}" form="list-form"'
        f' aria-label="Select conversation: {subject}">\n'
        f'  <a class="open" href="{url}" hx-get="{url}" hx-target="#reader" hx-swap="outerHTML"'
        f' hx-push-url="true">\n'
        f'    <span class="from">{senders}</span>\n'
        f'    <time class="date" datetime="{rc.dates.iso(m.internal_date)}">'
        f'{escape(rc.dates.short(m.internal_date))}</time>\n'
        f'    <span class="subject">{subject}</span>\n'
        f'    <span class="marks">{marks}</span>\n'
        f'    <span class="preview">{escape(m.preview)}</span>\n'
        f'  </a>\n</li>\n'
    )


def rows_html(messages, context) -> str:
    """The rows of ``messages``: conversation rows when the context has conversations."""
    rc = RowContext(context)
    draw = conversation_row if rc.conversations else message_row
    return "".join(draw(m, rc) for m in messages)
