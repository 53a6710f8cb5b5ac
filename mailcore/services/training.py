"""Teaching the spam engine from what users do: a message moved (or copied) into Junk is
learnt as spam, one moved out of Junk into another folder (Trash aside) as ham, whichever door
did it (webmail Junk / Not junk, an IMAP client's MOVE or COPY).

The move commits first; only then is a Celery task published (``dispatch.dispatch_learning``,
sent by name, so this module imports no task code), and the worker hands the stored bytes to
rspamd's controller (``/learnspam``, ``/learnham``). No controller configured
(``CORREIO_RSPAMD_CONTROLLER_URL`` empty): nothing is published."""

import logging
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.db import transaction

from mailcore import blobstore
from mailcore.models import Folder, FolderRole
from mailcore.services import dispatch
from mailcore.trust import rspamd

logger = logging.getLogger("correio.trust")
# Bounded: a "select all, Junk" of a huge folder trains on a sample, not the whole folder.
MAX_PER_MOVE = 200


def training_kind(source: Folder | None, target: Folder) -> bool | None:
    """True: learn as spam; False: as ham; None: this move teaches nothing."""
    into_junk = target.role == FolderRole.JUNK
    out_of_junk = source is not None and source.role == FolderRole.JUNK
    if into_junk and not out_of_junk:
        return True
    if out_of_junk and not into_junk and target.role != FolderRole.TRASH:
        return False
    return None


def train_after_commit(source: Folder | None, target: Folder, blob_ids: Iterable[str]) -> None:
    """Inside the move's transaction: publish the learning task once it commits."""
    spam = training_kind(source, target)
    if spam is None or not settings.CORREIO_RSPAMD_CONTROLLER_URL:
        return
    ids = list(dict.fromkeys(blob_ids))[:MAX_PER_MOVE]
    if ids:
        transaction.on_commit(lambda: dispatch.dispatch_learning(ids, spam))


def learn_messages(blob_ids: Sequence[str], spam: bool) -> int:
    """Hand each stored message to rspamd as spam or ham; the number rspamd took. Raises
    ``OSError`` when rspamd cannot be reached (the task retries)."""
    url = settings.CORREIO_RSPAMD_CONTROLLER_URL
    if not url:
        return 0
    learnt = 0
    for blob_id in blob_ids:
        try:
            raw = blobstore.load_blob(blob_id)
        except Exception:  # expunged and collected meanwhile: nothing to learn from
            continue
        if rspamd.learn(url, raw, spam, password=settings.CORREIO_RSPAMD_PASSWORD):
            learnt += 1
    return learnt
