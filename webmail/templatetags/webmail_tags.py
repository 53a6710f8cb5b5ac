"""Small display helpers for the webmail templates."""

from django import template
from django.utils import timezone
from django.utils.safestring import mark_safe

from webmail import rows

register = template.Library()


@register.filter
def short_date(value):
    """Time for today's mail, day and month for this year's, else the full date."""
    return rows.DateLabels().short(value)


@register.simple_tag(takes_context=True)
def message_rows(context, messages):
    """The list's rows of ``messages`` (webmail/rows.py): conversations when the page shows
    them, else single messages."""
    return mark_safe(rows.rows_html(messages, context))  # noqa: S308 (escaped in rows.py)


@register.simple_tag(takes_context=True)
def message_row(context, message):
    """One single message's row, wherever the list shows conversations or not."""
    return mark_safe(rows.message_row(message, rows.RowContext(context)))  # noqa: S308


@register.filter
def long_date(value):
    if not value:
        return ""
    return timezone.localtime(value).strftime("%a, %d %b %Y %H:%M")


@register.filter
def get_item(mapping, key):
    """``mapping[key]``, or None: for dicts keyed by a variable (form errors, badges)."""
    if not mapping:
        return None
    return mapping.get(key)


@register.filter
def recipient_fields(composition):
    """(name, label, value) of the To, Cc and Bcc fields of a composition."""
    return [("to", "To", composition.to), ("cc", "Cc", composition.cc),
            ("bcc", "Bcc", composition.bcc)]
