"""Issue 12: purged tombstones of expunged UIDs, and QRESYNC still right for a client whose
mod-sequence predates the purge (RFC 7162 §3.2.5.2: VANISHED (EARLIER) may name every UID the
client may know that is not in the mailbox)."""

import pytest

from mailcore.services import flags, folders, tombstones
from tests.imap.test_condstore import client, fill, highest, raw  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def test_qresync_from_before_the_purge_reports_every_absent_uid(client, mailbox, inbox):  # noqa: F811
    fill(mailbox, 8)
    c = client()
    uidvalidity = c.select_folder("INBOX")[b"UIDVALIDITY"]
    mark = highest()
    c.logout()
    for uid in (2, 3, 5, 7):  # four expunges, four mod-sequences
        flags.set_flags(inbox, [uid], ["\\Deleted"], "add")
        folders.expunge(inbox)
    assert tombstones.purge_expunged(keep=1) == 3  # only 7's tombstone is left
    c = client()
    raw(c, "ENABLE QRESYNC")
    lines = raw(c, f"SELECT INBOX (QRESYNC ({uidvalidity} {mark} 1:8))")
    assert b"* VANISHED (EARLIER) 2:3,5,7" in lines
    # A client that synchronised after the purge gets only what followed.
    after = highest()
    flags.set_flags(inbox, [8], ["\\Deleted"], "add")
    folders.expunge(inbox)
    c.logout()
    c = client()
    raw(c, "ENABLE QRESYNC")
    lines = raw(c, f"SELECT INBOX (QRESYNC ({uidvalidity} {after} 1:8))")
    assert b"* VANISHED (EARLIER) 8" in lines
    lines = raw(c, f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {mark} VANISHED)")
    assert b"* VANISHED (EARLIER) 2:3,5,7:8" in lines
