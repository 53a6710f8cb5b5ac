"""Bounding the tombstones of expunged UIDs (issue 12).

Every expunge leaves an ``ExpungedMessage`` row so that "changes since a mod-sequence" can
report removals (RFC 7162 §3.2.10 VANISHED, the webmail's live list). Kept for ever they grow
without bound, so ``purge_expunged`` keeps the newest ``keep`` per folder and records, in the
folder's ``expunged_purged_modseq``, the highest mod-sequence it purged. A client asking for
changes since an older mod-sequence is then told every UID it may know that is not in the
folder any more (RFC 7162 §3.2.5.2 allows reporting, in VANISHED (EARLIER), UIDs that were
never seen), and the webmail reloads its list."""

from django.conf import settings
from django.db import transaction
from django.db.models import Count

from mailcore.models import ExpungedMessage, Folder, Message
from mailcore.services.common import UidRanges


def purge_expunged(keep: int | None = None) -> int:
    """Delete all but the newest ``keep`` tombstones of each folder (default
    ``CORREIO_EXPUNGED_KEEP``); return how many were deleted. One transaction per folder."""
    keep = settings.CORREIO_EXPUNGED_KEEP if keep is None else keep
    crowded = (ExpungedMessage.objects.values("folder_id").annotate(n=Count("id"))
               .filter(n__gt=keep).values_list("folder_id", flat=True))
    deleted = 0
    for folder_id in list(crowded):
        with transaction.atomic():
            # The folder's lock first, as every writer of the store takes it (services.common).
            folder = Folder.objects.select_for_update().filter(pk=folder_id).first()
            if folder is None:
                continue
            cutoff = (ExpungedMessage.objects.filter(folder_id=folder_id)
                      .order_by("-modseq", "-id").values_list("modseq", flat=True)[keep:keep + 1]
                      .first())
            if cutoff is None:
                continue
            # Everything at or below the cutoff goes, so no mod-sequence is half purged.
            count, _ = ExpungedMessage.objects.filter(folder_id=folder_id,
                                                      modseq__lte=cutoff).delete()
            deleted += count
            if cutoff > folder.expunged_purged_modseq:
                Folder.objects.filter(pk=folder_id).update(expunged_purged_modseq=cutoff)
    return deleted


def absent_uids(folder_id: int, uidnext: int, uids) -> list[int]:
    """UIDs below ``uidnext`` (among ``uids``: a ``UidRanges``, an iterable, or None for all)
    that no message of the folder has: what a client whose knowledge predates the purged
    tombstones may have to forget."""
    top = uidnext - 1
    if uids is None:
        candidates = range(1, top + 1)
    elif isinstance(uids, UidRanges):
        candidates = sorted({uid for lo, hi in uids.ranges
                             for uid in range(max(1, lo), min(hi, top) + 1)})
    else:
        candidates = sorted(uid for uid in set(uids) if 1 <= uid <= top)
    present = set(Message.objects.filter(folder_id=folder_id).values_list("uid", flat=True))
    return [uid for uid in candidates if uid not in present]
