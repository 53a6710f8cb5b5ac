"""A user's own account settings: display name and password (the webmail's settings page).

The password change checks the current password through the one credential check
(:func:`mailcore.services.credentials.authenticate`), so it shares the failed-login throttle."""

from django.contrib.auth.password_validation import validate_password

from mailcore.models import Mailbox
from mailcore.services.accounts import set_password
from mailcore.services.credentials import WEB, authenticate

MAX_DISPLAY_NAME = 200


def set_display_name(mailbox: Mailbox, name: str) -> Mailbox:
    """Set the name shown in From headers; control characters and folding are removed."""
    clean = " ".join("".join(ch if ch >= " " and ch != "\x7f" else " " for ch in name).split())
    mailbox.display_name = clean[:MAX_DISPLAY_NAME]
    mailbox.save(update_fields=["display_name"])
    return mailbox


def change_password(
    mailbox: Mailbox, current: str, new: str, remote_ip: str | None = None
) -> None:
    """Change the password after checking the current one. Raises ``AuthFailed`` (or
    ``AuthThrottled``) for a wrong current password and ``ValidationError`` when the new one
    fails the password validators."""
    authenticate(mailbox.address, current, remote_ip, door=WEB)
    validate_password(new, user=mailbox.user)
    set_password(mailbox, new)
