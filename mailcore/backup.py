"""Backup and restore of an installation: the database and the files in var/ that are not in it
(the secret key, the TLS certificate and key, the demo credentials). Used by ``manage.py
backup DIR`` and ``manage.py restore DIR``.

- **SQLite**: SQLite's online backup API copies the database page by page from a read
  transaction, so the copy is one consistent state even while the listeners commit mail (WAL
  mode lets them go on writing meanwhile). The copy is checked with ``PRAGMA quick_check``.
- **PostgreSQL**: ``pg_dump --format=custom`` (one repeatable-read snapshot); ``pg_restore
  --clean --if-exists --no-owner`` brings it back. Both must be on PATH (Debian:
  ``postgresql-client``, of the server's major version or newer).

Mail bytes, DKIM keys and password hashes are in the database. The backup folder is 0700 and
every file in it 0600, like var/; ``manifest.json`` lists what is there with SHA-256 sums, which
``restore`` checks before it touches anything.
"""

import hashlib
import json
import os
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mailcore.private import private_dir, touch_private, write_private

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_COPY = "correio.sqlite3"
PG_DUMP = "correio.pgdump"


class BackupError(Exception):
    pass


@dataclass(frozen=True)
class Database:
    """What the backup needs to know of Django's ``DATABASES['default']``."""

    vendor: str  # "sqlite" or "postgresql"
    name: str
    host: str = ""
    port: str = ""
    user: str = ""
    password: str = ""

    @classmethod
    def from_settings(cls, settings_dict: dict) -> "Database":
        engine = settings_dict["ENGINE"]
        if "sqlite" in engine:
            return cls("sqlite", str(settings_dict["NAME"]))
        if "postgresql" in engine:
            return cls("postgresql", settings_dict["NAME"], str(settings_dict.get("HOST") or ""),
                       str(settings_dict.get("PORT") or ""), settings_dict.get("USER") or "",
                       settings_dict.get("PASSWORD") or "")
        raise BackupError(f"no backup method for the database engine {engine}")

    def pg_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({k: v for k, v in (("PGHOST", self.host), ("PGPORT", self.port),
                                      ("PGUSER", self.user), ("PGPASSWORD", self.password),
                                      ("PGDATABASE", self.name)) if v})
        return env


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_private(source: Path, target: Path) -> None:
    """Copy a file, the copy 0600 from its first byte (secrets)."""
    write_private(target, source.read_bytes())


# --- Backup ----------------------------------------------------------------------------------


def sqlite_online_copy(source: str, target: Path) -> None:
    """Copy a live SQLite database with the online backup API into ``target`` (0600)."""
    touch_private(target)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=60)
    try:
        dst = sqlite3.connect(target)
        try:
            # All pages in one step: one read transaction, so one consistent state.
            src.backup(dst, pages=-1)
            dst.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
            (result,) = dst.execute("PRAGMA quick_check").fetchone()
            if result != "ok":
                raise BackupError(f"the copy of {source} fails its check: {result}")
        finally:
            dst.close()
    finally:
        src.close()


def make_backup(target: Path, db: Database, files: dict[str, Path]) -> dict:
    """Write a backup of ``db`` and ``files`` (name in the backup -> path) into ``target``,
    which must be missing or empty. Returns the manifest."""
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty")
    private_dir(target)
    entries = []
    if db.vendor == "sqlite":
        if not Path(db.name).exists():
            raise BackupError(f"no database at {db.name}")
        sqlite_online_copy(db.name, target / SQLITE_COPY)
        database = {"vendor": "sqlite", "file": SQLITE_COPY}
    else:
        touch_private(target / PG_DUMP)
        done = subprocess.run(
            ["pg_dump", "--format=custom", "--no-owner", "--file", str(target / PG_DUMP)],
            env=db.pg_env(), capture_output=True, text=True,
        )
        if done.returncode != 0:
            raise BackupError(f"pg_dump failed: {done.stderr.strip()}")
        database = {"vendor": "postgresql", "file": PG_DUMP}
    database["sha256"] = _sha256(target / database["file"])
    (target / "files").mkdir(mode=0o700, exist_ok=True)
    for name, path in sorted(files.items()):
        if path.is_file():
            _copy_private(path, target / "files" / name)
            entries.append({"name": name, "sha256": _sha256(target / "files" / name)})
    manifest = {"format": FORMAT, "created": datetime.now(UTC).isoformat(),
                "database": database, "files": entries}
    write_private(target / MANIFEST, json.dumps(manifest, indent=2).encode())
    return manifest


# --- Restore ---------------------------------------------------------------------------------


def read_manifest(source: Path) -> dict:
    """The manifest of a backup, after checking every file it lists against its sum."""
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError) as error:
        raise BackupError(f"{source} is not a Correio backup: {error}") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    listed = [(manifest["database"]["file"], manifest["database"]["sha256"])]
    listed += [(f"files/{entry['name']}", entry["sha256"]) for entry in manifest["files"]]
    for name, digest in listed:
        path = source / name
        if "/" in name.removeprefix("files/") or not path.is_file() or _sha256(path) != digest:
            raise BackupError(f"{path} is missing or damaged")
    return manifest


def _sqlite_has_tables(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return False
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                           ).fetchone()[0] > 0
    finally:
        con.close()


def restore_backup(source: Path, db: Database, files: dict[str, Path], *,
                   force: bool = False) -> dict:
    """Bring a backup back: the database (refused when the target already has tables, unless
    ``force``) and the files to their configured places. Returns the manifest."""
    manifest = read_manifest(source)
    vendor = manifest["database"]["vendor"]
    if vendor != db.vendor:
        raise BackupError(f"the backup is of a {vendor} database, the target is {db.vendor}")
    dump = source / manifest["database"]["file"]
    if vendor == "sqlite":
        target = Path(db.name)
        if _sqlite_has_tables(target) and not force:
            raise BackupError(f"{target} already holds a database (--force replaces it)")
        for suffix in ("-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        private_dir(target.parent)
        tmp = target.with_name(f".{target.name}.restore")
        tmp.unlink(missing_ok=True)
        touch_private(tmp)
        src = sqlite3.connect(f"file:{dump}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(tmp)
            try:
                src.backup(dst, pages=-1)
                dst.execute("PRAGMA journal_mode=WAL")
            finally:
                dst.close()
        finally:
            src.close()
        os.replace(tmp, target)
    else:
        if not force:
            check = subprocess.run(
                ["psql", "-tAc", "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"],
                env=db.pg_env(), capture_output=True, text=True,
            )
            if check.returncode != 0:
                raise BackupError(f"psql failed: {check.stderr.strip()}")
            if int(check.stdout.strip() or 0):
                raise BackupError(f"database {db.name} already has tables (--force replaces)")
        done = subprocess.run(
            ["pg_restore", "--clean", "--if-exists", "--no-owner", "--exit-on-error",
             "--dbname", db.name, str(dump)],
            env=db.pg_env(), capture_output=True, text=True,
        )
        if done.returncode != 0:
            raise BackupError(f"pg_restore failed: {done.stderr.strip()}")
    for entry in manifest["files"]:
        path = files.get(entry["name"])
        if path is not None:
            private_dir(path.parent)
            _copy_private(source / "files" / entry["name"], path)
    return manifest
