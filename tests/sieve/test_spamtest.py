"""spamtest/spamtestplus (RFC 5235) fed by the spam verdict: real rspamd scanning at the MX
(tests/trust fixtures), the script uploaded through the service, mail sent with smtplib and
read over IMAP; a sender's own X-Spam-Score is removed at the MX and never believed."""

import imaplib

import pytest

from mailcore import blobstore
from mailcore.blobstore import load_blob
from mailcore.models import InboundVerdict, Message
from mailcore.protocols.common.config import ListenerConfig
from mailcore.protocols.imap import server as imap_server
from mailcore.services import filtering
from mailcore.trust import spamheader
from tests.conftest import PASSWORD
from tests.listeners import run_listener
from tests.smtp.conftest import local  # noqa: F401
from tests.trust.conftest import (  # noqa: F401
    message,
    rspamd_server,
    sender_auth,
    spam_engine,
    trust_dns,
)
from tests.trust.test_mx import send

pytestmark = pytest.mark.django_db(transaction=True)

SCRIPT = ('require ["spamtest", "relational", "comparator-i;ascii-numeric", "fileinto",'
          ' "mailbox"];\n'
          'if spamtest :value "ge" :comparator "i;ascii-numeric" "1" {\n'
          '  fileinto :create "Scanned";\n}\n')
FORGED = b"X-Spam-Score: 14.00 / 15.00\r\nX-Spam-Score:\r\n 1.0\r\n"


def folders_over_imap() -> dict[str, int]:
    config = ListenerConfig(imap_addr=("127.0.0.1", 0))
    with run_listener(lambda: imap_server.start_servers(config)) as listener:
        imap = imaplib.IMAP4("127.0.0.1", listener.port)
        imap.login("demo@example.test", PASSWORD)
        counts = {}
        for name in ("INBOX", "Scanned"):
            typ, data = imap.select(name, readonly=True)
            counts[name] = int(data[0]) if typ == "OK" else -1
        imap.logout()
    return counts


def stored_headers() -> bytes:
    (row,) = Message.objects.filter(mailbox__address="demo@example.test")
    raw = load_blob(row.blob_id)
    return raw[:raw.index(b"\r\n\r\n")]


def test_the_verdict_of_rspamd_feeds_spamtest(spam_engine, start_smtp, local,  # noqa: F811
                                              install_script):
    install_script(local["demo"], SCRIPT)
    assert send(start_smtp().port, "a@pass.test", FORGED + message("a@pass.test"))[0] == 250
    assert folders_over_imap() == {"INBOX": 0, "Scanned": 1}
    headers = stored_headers()
    # Exactly one score field, ours: rspamd's score against its reject threshold.
    assert headers.lower().count(b"x-spam-score") == 1
    verdict = InboundVerdict.objects.get()
    assert verdict.spam_scanned and verdict.spam_required and verdict.spam_required > 0
    assert spamheader.field(verdict.spam_score, verdict.spam_required) in headers + b"\r\n"


def test_without_a_scan_a_forged_score_is_removed_and_spamtest_says_untested(
        start_smtp, local, install_script):  # noqa: F811
    install_script(local["demo"], SCRIPT)
    assert send(start_smtp().port, "a@pass.test", FORGED + message("a@pass.test"))[0] == 250
    assert folders_over_imap() == {"INBOX": 1, "Scanned": -1}
    assert b"x-spam-score" not in stored_headers().lower()


def test_a_stored_verdict_is_used_and_the_header_only_when_ours(transactional_db):
    raw = b"X-Spam-Score: 12.00 / 15.00\r\nSubject: x\r\n\r\nhi\r\n"
    assert filtering.spam_source(raw, None, trust_header=False)() is None
    assert filtering.spam_source(raw, None, trust_header=True)() == (12.0, 15.0)
    assert filtering.spam_source(raw, (1.0, 15.0), trust_header=True)() == (1.0, 15.0)
    blobstore.store_blob(raw)
    InboundVerdict.objects.create(blob_id=blobstore.blob_id(raw), spam_scanned=True,
                                  spam_score=3.5, spam_required=7.0)
    assert filtering.spam_source(raw, None, trust_header=False)() == (3.5, 7.0)
    assert spamheader.strip(raw) == b"Subject: x\r\n\r\nhi\r\n"
