"""The webmail's search: a parsed query run against a mailbox, newest first."""

from datetime import date, datetime, time

from django.db.models import QuerySet
from django.utils import timezone

from mailcore.models import Folder, FolderRole, Mailbox, Message
from mailcore.services.search.plans import text_filter
from mailcore.services.search.query import SearchQuery


def resolve_folder(mailbox: Mailbox, name: str) -> Folder | None:
    """The folder ``in:`` names (by name, case-insensitively, or by role), or None for all
    folders (``in:anywhere``, ``in:all`` or an unknown name)."""
    low = name.lower()
    if low in ("anywhere", "all", "*"):
        return None
    folders = list(Folder.objects.filter(mailbox=mailbox))
    for folder in folders:
        if folder.name.lower() == low:
            return folder
    for folder in folders:
        if folder.role and (folder.role == low or folder.get_role_display().lower() == low):
            return folder
    return None


def _local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def search_messages(
    mailbox: Mailbox, query: SearchQuery, folder: Folder | None = None
) -> QuerySet[Message]:
    """Messages of the mailbox matching the query, newest first (by internal date, then id).

    ``folder`` limits the search to one folder unless the query says ``in:``. Callers slice
    the queryset (with a keyset condition for the next pages). Choosing its plan (see "Query
    plans" above) runs one or two small queries now; the page itself runs when sliced."""
    if query.folder:
        folder = resolve_folder(mailbox, query.folder)
        if folder is None and query.folder.lower() not in ("anywhere", "all", "*"):
            return Message.objects.none()
    qs = Message.objects.filter(mailbox=mailbox)
    hidden: list[int] = []
    if folder is not None:
        qs = qs.filter(folder=folder)
    elif not query.folder:
        # All folders means the mail a person keeps: not the Trash or Junk (as Gmail does).
        hidden = list(
            Folder.objects.filter(
                mailbox=mailbox, role__in=[FolderRole.TRASH, FolderRole.JUNK]
            ).values_list("pk", flat=True)
        )
        qs = qs.exclude(folder__in=hidden)
    if query.terms:
        qs = text_filter(qs, query.terms, mailbox, folder, hidden)
    if query.has_attachment is not None:
        qs = qs.filter(has_attachments=query.has_attachment)
    if query.unread is not None:
        qs = qs.filter(seen=not query.unread)
    if query.flagged is not None:
        qs = qs.filter(flagged=query.flagged)
    if query.after is not None:
        qs = qs.filter(internal_date__gte=_local_midnight(query.after))
    if query.before is not None:
        qs = qs.filter(internal_date__lt=_local_midnight(query.before))
    if query.larger is not None:
        qs = qs.filter(size__gt=query.larger)
    if query.smaller is not None:
        qs = qs.filter(size__lt=query.smaller)
    return qs.order_by("-internal_date", "-id")
