"""Real clients against the listener: mbsync (Debian's isync) syncs a 500-message mailbox down
to a Maildir and flags back up; curl lists folders and fetches a message."""

import re
import subprocess

import pytest

from mailcore.models import Folder, Message
from mailcore.services import delivery
from tests.conftest import PASSWORD
from tests.factories import make_message
from tests.imap.conftest import ADDRESS

pytestmark = pytest.mark.django_db(transaction=True)


def fill(mailbox, count):
    batch = [(make_message(subject=f"Sync {i}", body=f"Body {i}\n"), [mailbox.pk])
             for i in range(count)]
    for start in range(0, count, 100):
        delivery.deliver_to_inboxes(batch[start : start + 100])


def test_mbsync_syncs_500_messages_down_and_flags_back_up(imap, mailbox, tls_files, tmp_path):
    fill(mailbox, 500)
    _cert, _key, ca = tls_files
    maildir = tmp_path / "mail"
    maildir.mkdir()
    config = tmp_path / "mbsyncrc"
    config.write_text(
        f"""IMAPAccount correio
Host 127.0.0.1
Port {imap.ports[1]}
User {ADDRESS}
Pass "{PASSWORD}"
SSLType IMAPS
CertificateFile {ca}

IMAPStore remote
Account correio

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX

Channel sync
Far :remote:
Near :local:
Patterns INBOX Archive
Create Near
Sync All
SyncState *
"""
    )

    def run():
        result = subprocess.run(["mbsync", "-c", str(config), "sync"], capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stderr + result.stdout

    run()
    files = sorted((maildir / "INBOX" / "new").iterdir()) + sorted(
        (maildir / "INBOX" / "cur").iterdir()
    )
    assert len(files) == 500
    # mbsync stores Maildir files with LF line ends and adds its X-TUID header.
    bodies = {re.sub(rb"X-TUID: [^\n]*\n", b"", f.read_bytes()) for f in files}
    stored = {bytes(m.blob.data).replace(b"\r\n", b"\n")
              for m in Message.objects.select_related("blob")}
    assert bodies == stored
    # Flag ten messages and trash one locally (Maildir info suffixes), then sync back up.
    cur = maildir / "INBOX" / "cur"
    for f in files[:10]:
        f.rename(cur / (f.name.split(":")[0] + ":2,FS"))
    trashed = files[10]
    trashed.rename(cur / (trashed.name.split(":")[0] + ":2,ST"))
    run()
    inbox = Folder.objects.get(mailbox=mailbox, name="INBOX")
    assert Message.objects.filter(folder=inbox, flagged=True, seen=True).count() == 10
    assert Message.objects.filter(folder=inbox, deleted=True).count() == 1
    # New mail on the server comes down on the next run.
    fill(mailbox, 3)
    run()
    total = len(list((maildir / "INBOX" / "new").iterdir())) + len(list(cur.iterdir()))
    assert total == 503


def test_curl_lists_folders_and_fetches_a_message(imap, mailbox, tls_files):
    raw = make_message(subject="Fetched by curl")
    delivery.deliver_to_mailboxes(raw, [mailbox.pk])
    _cert, _key, ca = tls_files
    listing = subprocess.run(
        ["curl", "-sS", "--user", f"{ADDRESS}:{PASSWORD}", f"imap://127.0.0.1:{imap.ports[0]}/"],
        capture_output=True, timeout=30,
    )
    assert listing.returncode == 0, listing.stderr
    assert b'"INBOX"' in listing.stdout and b"\\Sent" in listing.stdout
    fetched = subprocess.run(
        ["curl", "-sS", "--cacert", str(ca), "--user", f"{ADDRESS}:{PASSWORD}",
         f"imaps://127.0.0.1:{imap.ports[1]}/INBOX;UID=1"],
        capture_output=True, timeout=30,
    )
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout == raw
    search = subprocess.run(
        ["curl", "-sS", "--user", f"{ADDRESS}:{PASSWORD}", "-X", "SEARCH SUBJECT curl",
         f"imap://127.0.0.1:{imap.ports[0]}/INBOX"],
        capture_output=True, timeout=30,
    )
    assert search.stdout.strip() == b"* SEARCH 1"
