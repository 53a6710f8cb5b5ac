"""manage.py apppassword ADDRESS --label NAME: make an app password for a mail client and print
it, once (only its digest is kept). ``--list`` shows the mailbox's app passwords; ``--revoke ID``
deletes one."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from mailcore.exceptions import MailboxNotFound
from mailcore.services import accounts, apppasswords


class Command(BaseCommand):
    help = "Create (and print once), list or revoke app passwords for IMAP, POP3 and SMTP."

    def add_arguments(self, parser):
        parser.add_argument("address", help="the mailbox, e.g. alice@example.org")
        parser.add_argument("--label", help="what it is for, e.g. 'phone'")
        parser.add_argument("--list", action="store_true", help="list the app passwords")
        parser.add_argument("--revoke", type=int, metavar="ID", help="revoke one, by id")

    def handle(self, *args, address, label, list, revoke, **options):
        try:
            mailbox = accounts.get_mailbox(address)
        except MailboxNotFound:
            raise CommandError(f"{address} is not a mailbox here") from None
        if list:
            for row in apppasswords.list_app_passwords(mailbox):
                used = (f"last used {row.last_used_at:%Y-%m-%d %H:%M} from {row.last_used_from}"
                        if row.last_used_at else "never used")
                self.stdout.write(f"{row.pk}\t{row.label}\tcreated {row.created:%Y-%m-%d}\t{used}")
            return
        if revoke is not None:
            if not apppasswords.revoke_app_password(mailbox, revoke):
                raise CommandError(f"{mailbox.address} has no app password {revoke}")
            self.stdout.write(self.style.SUCCESS(f"Revoked app password {revoke}"))
            return
        if not label:
            raise CommandError("--label NAME is required to create an app password")
        try:
            row, secret = apppasswords.create_app_password(mailbox, label)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stderr.write(f"App password {row.pk} ({row.label}) for {mailbox.address}; it is "
                          "shown only now:")
        self.stdout.write(secret)
