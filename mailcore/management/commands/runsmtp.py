"""manage.py runsmtp: the SMTP listeners (the MX on CORREIO_SMTP_ADDR, submission on
CORREIO_SUBMISSION_ADDR and CORREIO_SUBMISSIONS_ADDR) in one process."""

from django.core.management.base import BaseCommand

from mailcore.protocols.common import runner


class Command(BaseCommand):
    help = "Run the SMTP listeners (MX, submission 587/465) until SIGINT/SIGTERM."

    def handle(self, *args, **options):
        runner.run(["smtp"])
