"""Shared set-up for benchmarks: a throw-away data folder and database, Django configured.

``--postgres URL`` runs on a fresh PostgreSQL database made next to the one in URL (it is created
and dropped; ``<name in URL>_bench_<bench>``, or ``correio_bench_<bench>`` when URL names none); otherwise SQLite in a temporary folder, as `make run` uses."""

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args(description: str, extra=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--postgres", metavar="URL", help="run on PostgreSQL (server URL)")
    if extra:
        extra(parser)
    return parser.parse_args()


def setup_django(args: argparse.Namespace, name: str, reuse: str | None = None) -> str:
    """Configure Django on a fresh database; returns a label for the printed figures.

    ``reuse``: a data folder kept between runs (created if missing); its SQLite database, or the
    PostgreSQL database of the same bench name, is kept rather than made afresh."""
    if reuse:
        var_dir = os.path.abspath(reuse)
        os.makedirs(var_dir, exist_ok=True)
    else:
        var_dir = tempfile.mkdtemp(prefix=f"correio-bench-{name}-")
    os.environ["CORREIO_VAR_DIR"] = var_dir
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webmail.settings")
    label = "SQLite (WAL, synchronous=FULL)"
    if args.postgres:
        import psycopg

        # Named after the database in URL, if any, so that two people benchmarking on one
        # server (each with a database of their own) do not drop each other's.
        given = args.postgres.rsplit("/", 1)[1].split("?", 1)[0] if "//" in args.postgres \
            and args.postgres.count("/") >= 3 else ""
        prefix = given if given and given not in ("postgres", "template1") else "correio"
        db_name = f"{prefix}_bench_{name}"
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [db_name]
            ).fetchone()
            if not (reuse and exists):
                conn.execute(f"DROP DATABASE IF EXISTS {db_name}")
                conn.execute(f"CREATE DATABASE {db_name}")
        base = args.postgres.rsplit("/", 1)[0]
        os.environ["DATABASE_URL"] = f"{base}/{db_name}"
        label = "PostgreSQL"
    else:
        os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("migrate", verbosity=0)
    return label


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]
