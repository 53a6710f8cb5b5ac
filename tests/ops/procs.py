"""Correio's real processes for the operations tests: ``manage.py`` commands, ``runmail``,
gunicorn and a Celery worker, on a private var/ and SQLite database under a temporary folder,
every listener on a free loopback port."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ADDRESS = "demo@example.test"
PASSWORD = "pw for demo 1"
ADDR_VARS = ("CORREIO_SMTP_ADDR", "CORREIO_SUBMISSION_ADDR", "CORREIO_SUBMISSIONS_ADDR",
             "CORREIO_IMAP_ADDR", "CORREIO_IMAPS_ADDR", "CORREIO_POP3_ADDR",
             "CORREIO_POP3S_ADDR", "CORREIO_MANAGESIEVE_ADDR", "CORREIO_METRICS_ADDR")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"process exited: {proc.communicate()[0]!r}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def http_get(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class Deployment:
    """One installation: a var/ folder, its database, and the processes started on it."""

    def __init__(self, var: Path, **env):
        self.var = var
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("REDIS_URL", "CELERY_BROKER_URL", "CORREIO_TEST_DATABASE",
                                 "DATABASE_URL", "SECRET_KEY", *ADDR_VARS)}
        for name in ADDR_VARS:
            self.env[name] = ""  # every listener off unless a test turns it on
        self.env.update({"CORREIO_VAR_DIR": str(var),
                         "DATABASE_URL": f"sqlite:///{var / 'correio.sqlite3'}", **env})
        self.procs: list[subprocess.Popen] = []

    def manage(self, *args, input: bytes | None = None, timeout: float = 600,
               **env) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT,
                              env={**self.env, **env}, capture_output=True, input=input,
                              timeout=timeout)
        assert done.returncode == 0, (args, done.stdout[-3000:], done.stderr[-3000:])
        return done

    def setup(self) -> None:
        self.manage("migrate", "--noinput", "-v0")
        self.manage("makecert")
        self.manage("createdomain", "example.test")
        self.manage("createmailbox", ADDRESS, "--password", PASSWORD)

    def start(self, args: list[str], **env) -> subprocess.Popen:
        proc = subprocess.Popen(args, cwd=ROOT, env={**self.env, **env},
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def runmail(self, **env) -> subprocess.Popen:
        return self.start([sys.executable, "manage.py", "runmail"], **env)

    def gunicorn(self, port: int, **env) -> subprocess.Popen:
        return self.start([str(BIN / "gunicorn"), "-c", "python:webmail.gunicorn_conf",
                           "webmail.wsgi:application"], CORREIO_WEB_ADDR=f"127.0.0.1:{port}",
                          **env)

    def worker(self, **env) -> subprocess.Popen:
        return self.start([str(BIN / "celery"), "-A", "webmail", "worker", "--loglevel=INFO",
                           "--concurrency=2"], **env)

    def stop(self, proc: subprocess.Popen) -> str:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            output = proc.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            output = proc.communicate()[0]
        return output.decode(errors="replace")

    def stop_all(self) -> None:
        for proc in self.procs:
            self.stop(proc)
