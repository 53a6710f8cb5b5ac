"""manage.py runimap: the IMAP listeners (STARTTLS on CORREIO_IMAP_ADDR, implicit TLS on
CORREIO_IMAPS_ADDR) in one process."""

from django.core.management.base import BaseCommand

from mailcore.protocols.common import runner


class Command(BaseCommand):
    help = "Run the IMAP listeners (IMAP with STARTTLS, and IMAPS)."

    def handle(self, *args, **options):
        runner.run(["imap"])
