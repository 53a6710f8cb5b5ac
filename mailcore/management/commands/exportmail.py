"""manage.py exportmail ADDRESS DIR [--folder NAME]: write a mailbox out as a Maildir.

Every folder by default, in the Maildir++ layout Dovecot and Courier read: INBOX is DIR
itself, ``Work/2024`` is ``DIR/.Work.2024`` (a ``.`` inside a name is written ``\\056``).
Flags go in the info suffix (``:2,FS``), keywords as letters listed in ``dovecot-keywords``,
the internal date as the file's mtime. Messages are read a page at a time (streaming)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from mailcore.exceptions import MailError
from mailcore.mailfiles import MaildirWriter
from mailcore.services.accounts import get_mailbox
from mailcore.services.folders import get_folder
from mailcore.services.transfer import folders_of, iter_folder


def maildir_path(root: Path, folder_name: str) -> Path:
    if folder_name.upper() == "INBOX":
        return root
    return root / ("." + folder_name.replace(".", "\\056").replace("/", "."))


class Command(BaseCommand):
    help = "Export a mailbox (or one folder) as a Maildir."

    def add_arguments(self, parser):
        parser.add_argument("address")
        parser.add_argument("dir")
        parser.add_argument("--folder", help="only this folder, written as DIR itself")

    def handle(self, *args, address, dir, folder, **options):
        root = Path(dir)
        if root.exists() and any(root.iterdir()):
            raise CommandError(f"{root} is not empty")
        try:
            mailbox = get_mailbox(address)
            folders = [get_folder(mailbox, folder)] if folder else folders_of(mailbox)
        except MailError as error:
            raise CommandError(str(error) or type(error).__name__) from None
        total = 0
        for each in folders:
            writer = MaildirWriter(root if folder else maildir_path(root, each.name))
            for message in iter_folder(each):
                writer.write(message.raw, message.flags, message.internal_date, message.uid)
            writer.close()
            total += writer.count
            self.stdout.write(f"{each.name}: {writer.count:,} messages")
        self.stdout.write(f"Exported {total:,} messages of {mailbox.address} to {root}.")
