"""Import benchmark: 10,000 messages of ~5 KB (the SMTP intake benchmark's messages) from a
Maildir and from an mbox file into a fresh SQLite installation with ``manage.py importmail``,
then exported again with ``exportmail``. Prints messages/s of each, beside the SMTP intake
figure of bench/smtp_in.py on these machines (the issue asks import to keep up with intake).

    .venv/bin/python bench/importmail.py [--messages 10000]"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from smtp_in import RECIPIENT, make_message  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SMTP_INTAKE = 539  # msg/s, README "Benchmarks" (bench/smtp_in.py, 5 KB, 10 connections)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=5 * 1024)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="correio-import-") as tmp:
        tmp = Path(tmp)
        maildir = tmp / "maildir"
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True)
        with open(tmp / "mail.mbox", "wb") as mbox:
            for n in range(options.messages):
                raw = make_message(n, options.size)
                (maildir / "cur" / f"{1_700_000_000 + n}.M{n}.bench:2,S").write_bytes(raw)
                mbox.write(b"From sender@remote.test Mon Mar  2 10:00:00 2026\n")
                mbox.write(raw.replace(b"\r\n", b"\n") + b"\n")
        env = {k: v for k, v in os.environ.items()
               if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
        env.update(CORREIO_VAR_DIR=str(tmp / "var"),
                   DATABASE_URL=f"sqlite:///{tmp / 'var' / 'correio.sqlite3'}")

        def manage(*args) -> str:
            done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                                  capture_output=True, text=True, check=True)
            return done.stdout

        manage("migrate", "-v0")
        manage("createdomain", "example.test")
        manage("createmailbox", RECIPIENT, "--password", "bench password 1")
        print(f"{options.messages:,} messages of {options.size:,} bytes; SMTP intake "
              f"(bench/smtp_in.py) {SMTP_INTAKE} msg/s")
        for label, source, folder in (("Maildir", maildir, "FromMaildir"),
                                      ("mbox", tmp / "mail.mbox", "FromMbox")):
            out = manage("importmail", RECIPIENT, str(source), "--folder", folder,
                         "--no-progress")
            rate = float(re.search(r"\(([\d,]+) msg/s\)", out).group(1).replace(",", ""))
            print(f"import from {label:8s} {rate:7,.0f} msg/s  ({rate / SMTP_INTAKE:.2f}x intake)")
        start = time.perf_counter()
        manage("exportmail", RECIPIENT, str(tmp / "export"))
        elapsed = time.perf_counter() - start
        print(f"export to Maildir     {2 * options.messages / elapsed:7,.0f} msg/s"
              " (process start included)")


if __name__ == "__main__":
    main()
