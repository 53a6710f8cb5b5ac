"""manage.py restore DIR [--force]: bring back a backup made by ``manage.py backup`` into the
configured database and var/. Stop Correio's processes first; the database must be empty (a
fresh var/, or a new PostgreSQL database) unless --force, which replaces it."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from mailcore.backup import BackupError, Database, restore_backup
from mailcore.management.commands.backup import backed_up_files


class Command(BaseCommand):
    help = "Restore a backup made by `manage.py backup` (database, secrets, certificates)."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("dir")
        parser.add_argument("--force", action="store_true",
                            help="replace a database that already has tables")

    def handle(self, *args, dir, force, **options):
        connections.close_all()
        db = Database.from_settings(connections["default"].settings_dict)
        try:
            manifest = restore_backup(Path(dir), db, backed_up_files(), force=force)
        except (BackupError, OSError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"Restored the {db.vendor} database of {manifest['created']} and "
                          f"{len(manifest['files'])} files from {dir}. Run `manage.py migrate` "
                          "if this version is newer than the backup's.")
