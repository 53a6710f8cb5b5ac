"""Template tags of the issue 17 partials, so their pages' views need not change."""

from django import template

from webmail.identities import identity_views as _identity_views

register = template.Library()


@register.simple_tag
def identity_views(mailbox, prefs):
    """Every From identity of the mailbox with its name and signatures."""
    return _identity_views(mailbox, prefs)


@register.simple_tag
def preview_kind(attachment):
    """"image", "pdf" or "" for an attachment shown in the reading pane."""
    from webmail.views.print_preview import previewable

    return previewable(attachment.content_type, attachment.size)
