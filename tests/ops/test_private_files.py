"""Private by default: var/ is 0700 and every file Correio creates there is 0600 — the SQLite
database with its -wal and -shm files, the secret key, the TLS key, the demo credentials — even
when the operator's shell has the usual umask 022, and secrets are 0600 from their first byte."""

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mailcore.private import create_private, private_dir, touch_private, write_private

ROOT = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask():
    """The loosest umask: any mode below comes from os.open's argument, not from the umask."""
    old = os.umask(0)
    yield
    os.umask(old)


def test_secrets_are_created_0600_whatever_the_umask(tmp_path, open_umask):
    write_private(tmp_path / "tls" / "key.pem", b"key")
    assert create_private(tmp_path / "secret_key", b"first") is True
    assert create_private(tmp_path / "secret_key", b"second") is False
    touch_private(tmp_path / "db.sqlite3")
    assert mode(tmp_path / "tls" / "key.pem") == 0o600
    assert mode(tmp_path / "tls") == 0o700
    assert (tmp_path / "secret_key").read_bytes() == b"first"
    assert mode(tmp_path / "secret_key") == 0o600
    assert mode(tmp_path / "db.sqlite3") == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db.sqlite3", "secret_key", "tls"]


def test_write_private_replaces_a_world_readable_file_with_a_private_one(tmp_path, open_umask):
    path = tmp_path / "key.pem"
    path.write_bytes(b"old")
    path.chmod(0o644)
    write_private(path, b"new")
    assert path.read_bytes() == b"new" and mode(path) == 0o600


def test_private_dir_tightens_an_existing_open_folder(tmp_path, open_umask):
    folder = tmp_path / "var"
    folder.mkdir(mode=0o755)
    private_dir(folder)
    assert mode(folder) == 0o700


def test_sqlite_database_and_its_wal_files_are_0600(tmp_path, open_umask):
    db = tmp_path / "mail.sqlite3"
    touch_private(db)
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE t (x)")
    con.execute("INSERT INTO t VALUES (1)")
    con.commit()
    assert {p.name: mode(p) for p in tmp_path.iterdir()} == {
        "mail.sqlite3": 0o600, "mail.sqlite3-wal": 0o600, "mail.sqlite3-shm": 0o600,
    }
    con.close()


@pytest.mark.slow
def test_a_fresh_var_made_by_manage_py_is_private(tmp_path):
    var = tmp_path / "var"
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SECRET_KEY")}
    env["CORREIO_VAR_DIR"] = str(var)
    # The operator's usual umask: manage.py itself must make things private.
    holder = (
        "import os, sys; os.umask(0o022); sys.argv = ['manage.py'] + sys.argv[1:];"
        " import runpy; runpy.run_path('manage.py', run_name='__main__')"
    )
    for args in (["migrate", "-v0"], ["setupdemo"]):
        subprocess.run([sys.executable, "-c", holder, *args], cwd=ROOT, env=env, check=True,
                       capture_output=True, timeout=240)
    # With a connection open (as in a running server) the WAL files exist too.
    check = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'webmail.settings';"
        " django.setup(); from django.db import connection; from pathlib import Path;"
        " c = connection.cursor(); c.execute('CREATE TABLE IF NOT EXISTS probe (x)');"
        " c.execute('INSERT INTO probe VALUES (1)');"
        " import stat; var = Path(os.environ['CORREIO_VAR_DIR']);"
        " print(sorted((p.name, oct(stat.S_IMODE(p.stat().st_mode))) for p in var.rglob('*')"
        " if p.is_file()))"
    )
    out = subprocess.run([sys.executable, "-c", check], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True, timeout=120).stdout
    files = dict(eval(out))  # noqa: S307 - our own repr of a list of pairs
    for name in ("correio.sqlite3", "correio.sqlite3-wal", "correio.sqlite3-shm", "secret_key",
                 "key.pem", "cert.pem", "demo-credentials"):
        assert files.get(name) == "0o600", (name, files)
    assert mode(var) == 0o700
    assert all(mode(d) == 0o700 for d in var.rglob("*") if d.is_dir())
