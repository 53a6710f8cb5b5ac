"""Small display helpers for the webmail templates."""

from django import template
from django.urls import get_script_prefix, reverse
from django.utils import timezone

register = template.Library()


@register.filter
def short_date(value):
    """Time for today's mail, day and month for this year's, else the full date."""
    if not value:
        return ""
    local = timezone.localtime(value)
    now = timezone.localtime()
    if local.date() == now.date():
        return local.strftime("%H:%M")
    if local.year == now.year:
        return local.strftime("%d %b").lstrip("0")
    return local.strftime("%Y-%m-%d")


_prefixes: dict[str, str] = {}


@register.simple_tag
def message_url(pk):
    """``{% url 'webmail:message' pk %}`` for the rows of the message list: the URL resolver
    once per script prefix rather than once per row (it was a sixth of a list page's time)."""
    script = get_script_prefix()
    prefix = _prefixes.get(script)
    if prefix is None:
        prefix = _prefixes[script] = reverse("webmail:message", args=[1]).removesuffix("1/")
    return f"{prefix}{int(pk)}/"


@register.filter
def long_date(value):
    if not value:
        return ""
    return timezone.localtime(value).strftime("%a, %d %b %Y %H:%M")


@register.simple_tag
def sender_label(message, sent_view=False):
    if sent_view:
        return "To: " + (message.to_addrs or "(no recipient)")
    return message.from_name or message.from_addr or "(unknown sender)"


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
