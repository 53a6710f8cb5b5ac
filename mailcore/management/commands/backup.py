"""manage.py backup DIR: a consistent copy of the database and of var/'s secrets and
certificates, taken while Correio runs (``mailcore/backup.py`` says how)."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from mailcore.backup import BackupError, Database, make_backup


def backed_up_files() -> dict[str, Path]:
    """The files outside the database an installation needs: name in the backup -> path."""
    return {
        "secret_key": Path(settings.VAR_DIR) / "secret_key",
        "demo-credentials": Path(settings.VAR_DIR) / "demo-credentials",
        "tls-cert.pem": Path(settings.CORREIO_TLS_CERT),
        "tls-key.pem": Path(settings.CORREIO_TLS_KEY),
    }


class Command(BaseCommand):
    help = "Back up the database and var/'s secrets and certificates into DIR (new or empty)."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("dir")

    def handle(self, *args, dir, **options):
        db = Database.from_settings(connections["default"].settings_dict)
        try:
            manifest = make_backup(Path(dir), db, backed_up_files())
        except (BackupError, OSError) as error:
            raise CommandError(str(error)) from None
        names = ", ".join(entry["name"] for entry in manifest["files"]) or "none"
        self.stdout.write(f"Backed up the {db.vendor} database and files ({names}) to {dir}.")
