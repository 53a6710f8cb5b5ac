"""rspamd at the MX end to end: real rspamd (Debian's, started by the fixture), real verdicts
(the GTUBE patterns force each action), and mail never lost when rspamd is down or slow."""

import socket
import threading
import time

import pytest

from mailcore.blobstore import load_blob
from mailcore.models import InboundVerdict, Message
from mailcore.trust import rspamd
from tests.trust.conftest import message
from tests.trust.test_mx import send

pytestmark = pytest.mark.django_db(transaction=True)
GTUBE = b"JS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n"


def with_body(raw: bytes, body: bytes) -> bytes:
    return raw.replace(b"Body line.\r\n", body)


@pytest.fixture
def mx(spam_engine, start_smtp, local):
    return start_smtp().port


def delivered() -> list[tuple[str, InboundVerdict | None]]:
    rows = Message.objects.filter(mailbox__address="demo@example.test").select_related("folder")
    return [(row.folder.role, InboundVerdict.objects.filter(blob_id=row.blob_id).first())
            for row in rows]


def test_gtube_is_refused_as_spam(mx):
    code, text = send(mx, "a@pass.test", with_body(message("a@pass.test"), b"X" + GTUBE))
    assert code == 550 and text.startswith("5.7.1") and "spam" in text
    assert delivered() == []


def test_add_header_goes_to_junk_with_score_and_symbols_kept(mx):
    assert send(mx, "a@pass.test", with_body(message("a@pass.test"), b"Y" + GTUBE))[0] == 250
    [(role, verdict)] = delivered()
    assert role == "junk"
    assert verdict.junk and verdict.spam_scanned
    assert (verdict.spam_action, verdict.spam_score) == ("add header", 6.0)
    assert any(symbol.startswith("GTUBE(") for symbol in verdict.spam_symbols)
    assert any("spam score 6" in reason for reason in verdict.reasons)


def test_clean_mail_is_scanned_and_delivered_to_the_inbox(mx):
    assert send(mx, "a@pass.test", message("a@pass.test"))[0] == 250
    [(role, verdict)] = delivered()
    assert role == "inbox"
    assert verdict.spam_scanned and verdict.spam_action == "no action"
    assert verdict.dmarc == "pass"


def test_rspamd_down_means_accepted_and_marked_unscanned(mx, settings):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        settings.CORREIO_RSPAMD_URL = f"http://127.0.0.1:{closed.getsockname()[1]}"
    assert send(mx, "a@pass.test", message("a@pass.test"))[0] == 250
    [(role, verdict)] = delivered()
    assert role == "inbox"
    assert not verdict.spam_scanned and "not scanned for spam" in verdict.reasons


def test_rspamd_that_never_answers_costs_its_timeout_not_the_message(mx, settings):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held = []
    threading.Thread(target=lambda: held.append(listener.accept()), daemon=True).start()
    settings.CORREIO_RSPAMD_URL = f"http://127.0.0.1:{listener.getsockname()[1]}"
    settings.CORREIO_RSPAMD_TIMEOUT = 1
    try:
        start = time.monotonic()
        assert send(mx, "a@pass.test", message("a@pass.test"))[0] == 250
        assert time.monotonic() - start < 3
    finally:
        listener.close()
    [(role, verdict)] = delivered()
    assert role == "inbox" and not verdict.spam_scanned
    stored = load_blob(Message.objects.get().blob_id)
    assert b"Authentication-Results: mail.example.test;" in stored


def test_rspamd_learns_spam_and_ham(spam_engine):
    redis = pytest.importorskip("redis")
    try:
        redis.Redis(port=6379, socket_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("rspamd learns into Redis, which is not running")
    words = b" ".join(b"word%d" % i for i in range(60))
    spam = with_body(message("a@pass.test", subject="cheap pills"),
                     b"Buy cheap pills now, limited offer, click here. " + words + b"\r\n")
    ham = with_body(message("b@pass.test", subject="minutes"),
                    b"The minutes of the meeting are attached, see you Tuesday. "
                    + words.replace(b"word", b"item") + b"\r\n")
    assert rspamd.learn(spam_engine.controller_url, spam, spam=True)
    assert rspamd.learn(spam_engine.controller_url, ham, spam=False)


def test_an_allowed_authenticated_sender_is_kept_out_of_junk(mx, local):
    from mailcore.models import SenderRule
    from mailcore.services.sender_rules import add_sender_rule

    add_sender_rule(local["demo"], "pass.test", SenderRule.ALLOW)
    assert send(mx, "a@pass.test", with_body(message("a@pass.test"), b"Y" + GTUBE))[0] == 250
    [(role, verdict)] = delivered()
    assert role == "inbox" and verdict.spam_action == "add header"
