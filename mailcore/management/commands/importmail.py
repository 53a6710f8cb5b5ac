"""manage.py importmail ADDRESS PATH [--folder NAME]: bring mail in from an mbox file or a
Maildir, keeping flags and dates (``mailcore/mailfiles.py`` says how each is read).

Messages are read one at a time and appended through the service layer in batches (one
transaction each, ``mailcore.services.transfer.append_batch``); a message the store refuses
(too large, over quota) is reported and the rest goes on. A progress bar goes to stderr and a
summary with the rate to stdout."""

import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mailcore import mailfiles, metrics
from mailcore.exceptions import FolderNotFound, MailError
from mailcore.services.accounts import get_mailbox
from mailcore.services.folders import create_folder, get_folder
from mailcore.services.transfer import AppendItem, append_batch

BATCH_MESSAGES = 200
BATCH_BYTES = 4 * 1024 * 1024


class Progress:
    """``[#####-----] 5,000/10,000  1,234 msg/s`` on a terminal; a line every 10% otherwise."""

    WIDTH = 30

    def __init__(self, total: int, unit: str, stream=None, enabled: bool = True):
        self.total = max(total, 1)
        self.unit = unit
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.start = time.monotonic()
        self.shown = 0.0
        self.decile = -1

    def update(self, done: int, messages: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        fraction = min(done / self.total, 1.0)
        rate = messages / max(now - self.start, 1e-6)
        if self.tty:
            if not force and now - self.shown < 0.2:
                return
            self.shown = now
            bar = "#" * int(fraction * self.WIDTH)
            self.stream.write(f"\r[{bar:<{self.WIDTH}}] {fraction:6.1%} {messages:,} messages"
                              f"  {rate:,.0f} msg/s")
            self.stream.flush()
        elif int(fraction * 10) > self.decile or force:
            self.decile = int(fraction * 10)
            self.stream.write(f"{fraction:6.1%} {messages:,} messages {rate:,.0f} msg/s\n")

    def finish(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")


class Command(BaseCommand):
    help = "Import an mbox file or a Maildir into a mailbox's folder, keeping flags and dates."

    def add_arguments(self, parser):
        parser.add_argument("address")
        parser.add_argument("path")
        parser.add_argument("--folder", default="INBOX", help="target folder (created if missing)")
        parser.add_argument("--batch", type=int, default=BATCH_MESSAGES,
                            help="messages per transaction")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, address, path, folder, batch, no_progress, **options):
        source = Path(path)
        try:
            mailbox = get_mailbox(address)
        except MailError as error:
            raise CommandError(f"{address}: no such mailbox ({error})") from None
        try:
            target = get_folder(mailbox, folder)
        except FolderNotFound:
            target = create_folder(mailbox, folder)
        except MailError as error:
            raise CommandError(f"{folder}: {error}") from None
        if mailfiles.is_maildir(source):
            names = mailfiles.maildir_names(source)
            messages, total, unit = mailfiles.read_maildir(source, names), len(names), "files"
        elif source.is_file():
            messages, total, unit = mailfiles.read_mbox(source), source.stat().st_size, "bytes"
        else:
            raise CommandError(f"{source}: neither an mbox file nor a Maildir (cur/ and new/)")

        progress = Progress(total, unit, enabled=not no_progress)
        started = time.monotonic()
        imported, refused, read = 0, [], 0
        pending: list[AppendItem] = []
        sources: list[str] = []
        size = 0

        def flush():
            nonlocal imported, pending, sources, size
            if not pending:
                return
            outcome = append_batch(target, pending, max_size=settings.CORREIO_MAX_MESSAGE_SIZE)
            imported += outcome.appended
            metrics.DELIVERIES.labels("import").inc(outcome.appended)
            refused.extend((sources[i], error) for i, error in outcome.refused)
            pending, sources, size = [], [], 0

        for item in messages:
            read += 1
            if not item.raw.strip():
                refused.append((item.source, MailError("empty message")))
                continue
            pending.append(AppendItem(item.raw, tuple(item.flags), item.internal_date))
            sources.append(item.source)
            size += len(item.raw)
            if len(pending) >= batch or size >= BATCH_BYTES:
                flush()
                progress.update(item.end_offset if unit == "bytes" else read, imported)
        flush()
        progress.update(total, imported, force=True)
        progress.finish()
        elapsed = time.monotonic() - started
        rate = imported / elapsed if elapsed else 0.0
        self.stdout.write(
            f"Imported {imported:,} of {read:,} messages into {target.name} of {mailbox.address}"
            f" in {elapsed:.1f} s ({rate:,.0f} msg/s)."
        )
        for where, error in refused[:20]:
            self.stdout.write(f"  refused {where}: {type(error).__name__} {error}")
        if refused:
            self.stdout.write(f"Refused {len(refused):,} messages.")
