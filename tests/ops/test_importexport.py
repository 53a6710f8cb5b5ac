"""importmail and exportmail: mbox and Maildir parsing (flags, dates, quoting), and a round trip
of 10,000 generated messages Maildir -> import -> export -> compare, run as real processes on a
private database, with the import rate printed and memory that does not grow with the mailbox."""

import os
import random
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailcore import mailfiles
from tests.factories import make_message
from tests.ops.procs import ADDRESS, ROOT, Deployment

FLAG_CHOICES = ["", "S", "RS", "FS", "DS", "T", "FRS", "S", "S", ""]
KEYWORDS = ["$Forwarded", "$Junk", "work", "todo"]


def test_mbox_reader_keeps_flags_and_dates_and_unquotes_from_lines(tmp_path):
    path = tmp_path / "mail.mbox"
    path.write_bytes(
        b"From alice@remote.test Tue Mar  5 10:11:12 2024\n"
        b"From: Alice <alice@remote.test>\nSubject: one\nStatus: RO\nX-Status: AF\n"
        b"X-Keywords: work, $Junk\n\nHello\n>From the start\n>>From deeper\n\n"
        b"From bob@remote.test Wed Mar  6 00:00:00 2024\n"
        b"Subject: two\nDate: Thu, 07 Mar 2024 08:00:00 +0100\nStatus: O\n\nfirst line\n"
        b"From inside a paragraph is not a separator without a blank line before\n"
        b"From bob@remote.test garbage date\nstill the body\n"
    )
    first, second = list(mailfiles.read_mbox(path))
    assert first.raw == (b"From: Alice <alice@remote.test>\r\nSubject: one\r\n\r\nHello\r\n"
                         b"From the start\r\n>From deeper\r\n")
    assert set(first.flags) == {"\\Seen", "\\Answered", "\\Flagged", "work", "$Junk"}
    assert first.internal_date == datetime(2024, 3, 5, 10, 11, 12, tzinfo=UTC)
    assert second.flags == []
    assert second.internal_date == datetime(2024, 3, 6, tzinfo=UTC)
    assert second.raw.endswith(b"From bob@remote.test garbage date\r\nstill the body\r\n")


def test_maildir_reader_maps_info_letters_and_dovecot_keywords(tmp_path):
    for sub in ("cur", "new", "tmp"):
        (tmp_path / sub).mkdir()
    (tmp_path / "dovecot-keywords").write_text("0 $Forwarded\n1 work\n")
    (tmp_path / "cur" / "1700000000.M1.host:2,FRSab").write_bytes(b"Subject: a\n\nx\n")
    (tmp_path / "new" / "1700000001.M2.host").write_bytes(b"Subject: b\n\ny\n")
    os.utime(tmp_path / "new" / "1700000001.M2.host", (1700000123, 1700000123))
    first, second = list(mailfiles.read_maildir(tmp_path))
    assert first.flags == ["\\Flagged", "\\Answered", "\\Seen", "$Forwarded", "work"]
    assert first.raw == b"Subject: a\r\n\r\nx\r\n"
    assert second.flags == []
    assert second.internal_date == datetime.fromtimestamp(1700000123, UTC)


def generate_maildir(path: Path, count: int, seed: int = 19) -> None:
    """``count`` varied messages (sizes, flags, keywords, dates, non-ASCII) with CRLF ends."""
    rng = random.Random(seed)
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True)
    (path / "dovecot-keywords").write_text(
        "".join(f"{i} {name}\n" for i, name in enumerate(KEYWORDS)))
    words = ["mail", "reunião", "invoice", "Grüße", "meeting", "report", "日本", "lunch"]
    for n in range(count):
        stamp = 1_500_000_000 + n * 3600 + rng.randrange(3600)
        body = "\r\n".join(" ".join(rng.choice(words) for _ in range(12))
                           for _ in range(rng.randrange(5, 80)))
        raw = (f"From: Sender {n % 97} <s{n % 97}@remote.test>\r\nTo: {ADDRESS}\r\n"
               f"Subject: message {n} {rng.choice(words)}\r\nMessage-ID: <m{n}@remote.test>\r\n"
               "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
               f"Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n").encode()
        letters = rng.choice(FLAG_CHOICES) + "".join(
            sorted(rng.sample("abcd", rng.choice([0, 0, 1, 2]))))
        sub = "new" if not letters and n % 3 == 0 else "cur"
        name = f"{stamp}.M{n}P1.gen" + ("" if sub == "new" else f":2,{letters}")
        file = path / sub / name
        file.write_bytes(raw)
        os.utime(file, (stamp, stamp))


def read_back(path: Path) -> dict[bytes, tuple[bytes, frozenset, int]]:
    """Message-ID -> (bytes, flags, mtime) of every message of a Maildir."""
    found = {}
    keywords = mailfiles._keyword_names(path)  # noqa: SLF001
    for sub, name in mailfiles.maildir_names(path):
        file = path / sub / name
        raw = file.read_bytes()
        message_id = re.search(rb"Message-ID: (<[^>]+>)", raw).group(1)
        found[message_id] = (raw, frozenset(mailfiles.maildir_flags(name, keywords)),
                             int(file.stat().st_mtime))
    return found


def run_measured(site: Deployment, *args) -> tuple[str, int]:
    """A manage.py command in its own process: its output and the peak of Python's heap
    (tracemalloc; SQLite's page cache, up to 64 MiB by our PRAGMA, is outside it)."""
    code = ("import runpy, sys, tracemalloc; sys.argv = ['manage.py'] + sys.argv[1:]\n"
            "tracemalloc.start()\n"
            "try:\n    runpy.run_path('manage.py', run_name='__main__')\nfinally:\n"
            "    print('PEAK', tracemalloc.get_traced_memory()[1])\n")
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=site.env,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, int(re.search(r"PEAK (\d+)", done.stdout).group(1))


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_ten_thousand_messages_survive_a_maildir_round_trip(tmp_path):
    count = 10_000
    source = tmp_path / "source"
    generate_maildir(source, count)
    site = Deployment(tmp_path / "var")
    site.setup()
    size = sum(f.stat().st_size for f in source.rglob("*") if f.is_file())
    _, baseline = run_measured(site, "check")  # Django and the libraries: about 40 MB
    out, peak = run_measured(site, "importmail", ADDRESS, str(source), "--folder", "Archive/Old")
    print(out)
    assert f"Imported {count:,} of {count:,} messages into Archive/Old" in out
    # Streaming: the whole mailbox goes through, never more than a batch or two is held.
    assert peak - baseline < size / 3, (peak, baseline, size)
    export = tmp_path / "export"
    out = site.manage("exportmail", ADDRESS, str(export)).stdout.decode()
    assert f"Exported {count:,} messages" in out
    before, after = read_back(source), read_back(export / ".Archive.Old")
    assert len(after) == count
    assert before == after
    assert (export / "cur").is_dir()  # INBOX, empty, is the Maildir root


@pytest.mark.slow
def test_an_mbox_import_keeps_status_flags_and_reads_back_over_imap_order(tmp_path):
    mbox = tmp_path / "old.mbox"
    with open(mbox, "wb") as out:
        for n in range(300):
            status = [b"", b"Status: RO\n", b"Status: RO\nX-Status: A\n", b"X-Status: F\n"][n % 4]
            out.write(b"From someone@remote.test Mon Jan  1 00:%02d:00 2024\n" % (n % 60))
            out.write(b"Subject: mbox %d\nMessage-ID: <mb%d@remote.test>\n%s\n" % (n, n, status))
            out.write(b"line one\n>From quoted\n\n")
    site = Deployment(tmp_path / "var")
    site.setup()
    out = site.manage("importmail", ADDRESS, str(mbox)).stdout.decode()
    assert "Imported 300 of 300 messages into INBOX" in out
    export = tmp_path / "export"
    site.manage("exportmail", ADDRESS, str(export), "--folder", "INBOX")
    back = read_back(export)
    expected = [frozenset(), frozenset({"\\Seen"}), frozenset({"\\Seen", "\\Answered"}),
                frozenset({"\\Flagged"})]
    for n in range(300):
        raw, flags, mtime = back[b"<mb%d@remote.test>" % n]
        assert flags == expected[n % 4]
        assert b"Status" not in raw and raw.endswith(b"line one\r\nFrom quoted\r\n")
        assert mtime == int(datetime(2024, 1, 1, 0, n % 60, tzinfo=UTC).timestamp())


def test_importmail_refuses_an_unknown_mailbox_and_a_missing_path(tmp_path):
    site = Deployment(tmp_path / "var")
    site.manage("migrate", "--noinput", "-v0")
    done = subprocess.run([sys.executable, "manage.py", "importmail", "nobody@example.test",
                           str(tmp_path)], cwd=ROOT, env=site.env, capture_output=True)
    assert done.returncode != 0 and b"no such mailbox" in done.stderr


@pytest.mark.django_db
def test_append_batch_keeps_flags_dates_and_leaves_out_only_what_the_quota_refuses(mailbox):
    from mailcore.exceptions import QuotaExceeded
    from mailcore.models import Message
    from mailcore.services.folders import get_folder
    from mailcore.services.transfer import AppendItem, append_batch

    mailbox.quota = 2000
    mailbox.save()
    inbox = get_folder(mailbox, "INBOX")
    when = datetime(2020, 5, 6, 7, 8, 9, tzinfo=UTC)
    small = make_message(subject="small")
    items = [AppendItem(small, ("\\Seen", "work"), when),
             AppendItem(small + b"x" * 4000, (), None),
             AppendItem(make_message(subject="last"), ("\\Flagged",), when)]
    outcome = append_batch(inbox, items)
    assert outcome.appended == 2
    assert [(i, type(e)) for i, e in outcome.refused] == [(1, QuotaExceeded)]
    rows = list(Message.objects.filter(folder=inbox).order_by("uid")
                .values_list("uid", "seen", "flagged", "keywords", "internal_date", "subject"))
    assert rows == [(1, True, False, ["work"], when, "small"),
                    (2, False, True, [], when, "last")]
    inbox.refresh_from_db()
    assert (inbox.message_count, inbox.unseen_count, inbox.uidnext) == (2, 1, 3)
    # A batch that fits goes in whole, with consecutive UIDs.
    mailbox.quota = 0
    mailbox.save()
    assert append_batch(inbox, [AppendItem(small)] * 3).appended == 3
    assert list(Message.objects.filter(folder=inbox).values_list("uid", flat=True)
                .order_by("uid")) == [1, 2, 3, 4, 5]
