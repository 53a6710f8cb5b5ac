"""From identities (issue 17, building on issue 8's identities and signature): each address
the user may send as (``composing.identities``: the mailbox's own and its aliases) has a display
name and a signature, plain and HTML for rich text. An address without its own settings uses
the mailbox's display name and the signature of the settings page, as before."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils.html import escape

from mailcore.models import Mailbox
from mailcore.services.accounts import owned_addresses
from webmail import rich_text
from webmail.models import Identity, WebmailSettings


def addresses(mailbox: Mailbox) -> list[str]:
    """The addresses the user may send as, the mailbox's own first."""
    own = owned_addresses(mailbox)
    return [mailbox.address, *sorted(a for a in own if a != mailbox.address)]


@dataclass(frozen=True)
class IdentityView:
    address: str
    display_name: str
    signature: str
    signature_html: str

    @property
    def label(self) -> str:
        return f"{self.display_name} <{self.address}>" if self.display_name else self.address

    def html_signature(self) -> str:
        """The signature for rich text: its own HTML, else the plain one with line breaks."""
        if self.signature_html.strip():
            return self.signature_html
        return "<br>".join(escape(line) for line in self.signature.strip("\n").split("\n")) \
            if self.signature.strip() else ""


def identity_views(mailbox: Mailbox, prefs: WebmailSettings) -> list[IdentityView]:
    saved = {i.address: i for i in Identity.objects.filter(mailbox=mailbox)}
    out = []
    for address in addresses(mailbox):
        row = saved.get(address)
        if row is None:
            out.append(IdentityView(address, mailbox.display_name, prefs.signature, ""))
        else:
            out.append(IdentityView(address, row.display_name or mailbox.display_name,
                                    row.signature or prefs.signature, row.signature_html))
    return out


def identity_for(mailbox: Mailbox, prefs: WebmailSettings, address: str) -> IdentityView:
    for view in identity_views(mailbox, prefs):
        if view.address == address:
            return view
    return IdentityView(address, mailbox.display_name, prefs.signature, "")


def save_identity(mailbox: Mailbox, address: str, *, display_name: str, signature: str,
                  signature_html: str) -> Identity:
    """Keep one address's name and signatures; raise ``ValidationError`` for an address that
    is not the user's or a signature with active content."""
    if address not in addresses(mailbox):
        raise ValidationError("That is not one of your addresses.")
    if any(ch in display_name for ch in "\r\n\x00"):
        raise ValidationError("A name is one line.")
    try:
        clean_html = rich_text.check_html(signature_html) if signature_html.strip() else ""
    except rich_text.RichTextError as exc:
        raise ValidationError(exc.message) from None
    identity, _ = Identity.objects.update_or_create(
        mailbox=mailbox, address=address,
        defaults={"display_name": display_name.strip()[:200],
                  "signature": signature.replace("\r\n", "\n")[:4000],
                  "signature_html": clean_html[:20000]},
    )
    return identity
