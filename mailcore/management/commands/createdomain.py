"""manage.py createdomain NAME: add a domain Correio receives mail for."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from mailcore.services import accounts


class Command(BaseCommand):
    help = "Create a local mail domain."

    def add_arguments(self, parser):
        parser.add_argument("name", help="the domain, e.g. example.org")

    def handle(self, *args, name, **options):
        try:
            domain = accounts.create_domain(name)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(self.style.SUCCESS(f"Created domain {domain.name}"))
