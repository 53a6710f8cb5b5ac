"""Index stored messages that the full-text index does not hold yet (mail stored before the
index existed). Delivery indexes new mail itself; this is for upgrades."""

from django.core.management.base import BaseCommand

from mailcore.services.search.index import index_missing


class Command(BaseCommand):
    help = "Add stored messages missing from the full-text search index."

    def handle(self, *args, **options):
        done = index_missing()
        self.stdout.write(f"indexed {done} message(s)")
