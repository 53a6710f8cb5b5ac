"""manage.py runmail: every mail listener (SMTP, submission, IMAP, POP3, ManageSieve) in one process."""

from django.core.management.base import BaseCommand

from mailcore.protocols.common import runner


class Command(BaseCommand):
    help = "Run all mail listeners (SMTP, submission, IMAP, POP3, ManageSieve) in one process."
    protocols = list(runner.PROTOCOLS)

    def handle(self, *args, **options):
        runner.run(self.protocols)
