"""manage.py runsmtp: the SMTP listeners (the MX on CORREIO_SMTP_ADDR) in one process."""

from django.core.management.base import BaseCommand

from mailcore.protocols.common import runner


class Command(BaseCommand):
    help = "Run the SMTP listeners (MX on CORREIO_SMTP_ADDR) until SIGINT/SIGTERM."

    def handle(self, *args, **options):
        runner.run(["smtp"])
