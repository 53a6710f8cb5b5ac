"""Roundcube's message list on our server: its own IMAP client class sorts a folder by each
column the list offers (RFC 5256 SORT, RFC 5957 SORT=DISPLAY) and threads it (RFC 5256 THREAD),
and reads the answers with its own parsers (tests/imap/roundcube/message_list.php, PHP from
Debian's php-cli, Roundcube's library unpacked by tests/imap/roundcube/fetch.sh)."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mailcore.services import delivery
from tests.conftest import PASSWORD
from tests.factories import make_message

pytestmark = pytest.mark.django_db(transaction=True)

HERE = Path(__file__).with_name("roundcube")


@pytest.fixture(scope="session")
def roundcube_lib():
    if shutil.which("php") is None:
        pytest.fail("php-cli is missing: run tests/install-deps.sh")
    fetched = subprocess.run(["bash", str(HERE / "fetch.sh")], capture_output=True, text=True,
                             timeout=300)
    assert fetched.returncode == 0, fetched.stderr
    return fetched.stdout.strip().splitlines()[-1]


def message_list(lib: str, port: int, user: str, folder: str = "INBOX") -> dict:
    done = subprocess.run(["php", str(HERE / "message_list.php"), lib, str(port), user,
                           PASSWORD, folder], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_roundcube_sorts_every_column_and_threads_the_list(roundcube_lib, make_mailbox,
                                                          start_imap):
    box = make_mailbox("demo@example.test")
    inbox = box.folders.get(role="inbox")
    # Arrival order differs from every sort key; each column has one right order.
    mails = [  # (subject, display name <address>, Date, padding, message-id, in-reply-to)
        ("Re: Budget", "Zoe <zoe@remote.test>", "Tue, 03 Jun 2025 10:00:00 +0000", 300,
         "<b@x>", "<a@x>"),
        ("Budget", "Mallory <aaron@remote.test>", "Sun, 01 Jun 2025 09:00:00 +0000", 50,
         "<a@x>", None),
        ("Lunch", "bob@remote.test", "Wed, 04 Jun 2025 12:00:00 +0200", 900, "<l@x>", None),
        ("Fwd: Re: Budget", "Alice <alice@remote.test>", "Thu, 05 Jun 2025 08:00:00 +0000", 10,
         "<c@x>", "<b@x>"),
        ("Cinema", "Carol <carol@remote.test>", "Mon, 02 Jun 2025 18:00:00 -0300", 600,
         "<m@x>", None),
        ("Re: Lunch", "Dave <dave@remote.test>", "Fri, 06 Jun 2025 07:00:00 +0000", 150,
         "<r@x>", "<l@x>"),
    ]
    uids = {}
    for subject, sender, date, padding, message_id, parent in mails:
        raw = make_message(subject=subject, sender=sender, date=date, message_id=message_id,
                           in_reply_to=parent, references=parent, body="x" * padding + "\n")
        uids[message_id] = delivery.append_message(inbox, raw).uid
    u = [uids[m] for m in ("<b@x>", "<a@x>", "<l@x>", "<c@x>", "<m@x>", "<r@x>")]
    b, a, lunch, c, m, r = u

    got = message_list(roundcube_lib, start_imap().port, "demo@example.test")

    assert got["sort"] and got["display"], got
    assert {"REFERENCES", "ORDEREDSUBJECT"} <= set(got["threads"]), got["threads"]
    assert not any(got["errors"].values()), got["errors"]
    assert got["ARRIVAL"] == u
    # Sent date, time zones applied (RFC 5256 §3): Carol's 18:00 -0300 is 21:00 UTC.
    assert got["DATE"] == [a, m, b, lunch, c, r]
    assert got["DATE desc"] == [r, c, lunch, b, m, a]
    # SORT=DISPLAY (Roundcube asks for it when offered): the display name, else the address
    # (RFC 5957 §3; by mailbox, Mallory <aaron@...> would come first).
    assert got["FROM"] == [c, lunch, m, r, a, b]
    # Base subjects (RFC 5256 §2.1): "Re:" and "Fwd: Re:" removed; ties in mailbox order.
    assert got["SUBJECT"] == [b, a, c, m, lunch, r]
    sizes = sorted(u, key=lambda uid: (inbox.messages.get(uid=uid).size, uid))
    assert got["SIZE"] == sizes and got["SIZE desc"] == sizes[::-1]

    # Threads by references: Budget <- Re: Budget <- Fwd: Re: Budget; Lunch <- Re: Lunch;
    # Cinema alone. Roundcube orders the roots by date.
    refs = got["REFERENCES"]
    assert refs["tree"] == {str(a): {str(b): {str(c): []}}, str(m): [],
                            str(lunch): {str(r): []}}, refs
    assert refs["list"] == [a, b, c, m, lunch, r]
    assert refs["depth"] == {str(a): 0, str(b): 1, str(c): 2, str(m): 0, str(lunch): 0,
                             str(r): 1}
    # ORDEREDSUBJECT: by base subject, then by date within (RFC 5256 §3).
    subjects = got["ORDEREDSUBJECT"]
    assert subjects["tree"] == {str(a): {str(b): [], str(c): []}, str(m): [],
                                str(lunch): {str(r): []}}, subjects
