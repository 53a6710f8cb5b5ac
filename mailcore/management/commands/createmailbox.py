"""manage.py createmailbox ADDRESS [--password P]: create an account with its special folders."""

import getpass
import sys

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from mailcore.exceptions import DomainNotFound
from mailcore.services import accounts


class Command(BaseCommand):
    help = "Create a mailbox (an account) in a local domain. Prompts for the password if omitted."

    def add_arguments(self, parser):
        parser.add_argument("address", help="e.g. alice@example.org")
        parser.add_argument("--password", help="the password (prompted for when omitted)")
        parser.add_argument("--display-name", default="", help="the name shown in From headers")
        parser.add_argument("--quota", type=int, default=None, help="quota in bytes (0 = none)")

    def handle(self, *args, address, password, display_name, quota, **options):
        if password is None:
            if not sys.stdin.isatty():
                raise CommandError("no --password given and no terminal to prompt on")
            password = getpass.getpass(f"Password for {address}: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("the passwords do not match")
            try:
                validate_password(password)
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from None
        if not password:
            raise CommandError("the password cannot be empty")
        try:
            mailbox = accounts.create_mailbox(
                address, password, display_name=display_name, quota=quota
            )
        except DomainNotFound as exc:
            raise CommandError(f"{exc} (manage.py createdomain NAME)") from None
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(self.style.SUCCESS(f"Created mailbox {mailbox.address}"))
