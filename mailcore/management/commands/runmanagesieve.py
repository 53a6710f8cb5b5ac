"""manage.py runmanagesieve: the ManageSieve listener (RFC 5804) alone."""

from django.core.management.base import BaseCommand

from mailcore.protocols.common import runner


class Command(BaseCommand):
    help = "Run the ManageSieve listener (CORREIO_MANAGESIEVE_ADDR, STARTTLS when a certificate is set)."

    def handle(self, *args, **options):
        runner.run(["managesieve"])
