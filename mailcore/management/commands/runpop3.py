"""manage.py runpop3: the POP3 (STLS) and POP3S listeners in one process."""

from django.core.management.base import BaseCommand

from mailcore.protocols.common import runner


class Command(BaseCommand):
    help = "Run the POP3 listeners (CORREIO_POP3_ADDR with STLS, CORREIO_POP3S_ADDR with TLS)."

    def handle(self, *args, **options):
        runner.run(["pop3"])
