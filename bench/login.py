"""Webmail sign-in benchmark over real HTTP: starts gunicorn as `make run` does (the Procfile's
`-c python:webmail.gunicorn_conf`: 2 workers of 4 threads) on a fresh database with one mailbox
hashed by the project's password hasher, then signs in BENCH_RUNS times (default 50), each time as
a new browser would (GET /login/ for the CSRF cookie and token, then the timed POST /login/ up to
its 302), and prints p50/p95/max of the POST. Between sign-ins it times one bare Argon2id check
of the same hash (argon2-cffi, no Django), so that on a shared, loaded machine the part of a
sign-in that is not the hash can still be read: both see the same load.

Target (issue 13): p95 <= 100 ms with Argon2id at OWASP's parameters (Django 5.2's PBKDF2 at
1,000,000 rounds, the hasher before, costs about 0.3 s a check).

Usage: python bench/login.py [--postgres URL] [--tree DIR]  (``--tree``: run everything from
another checkout, e.g. an older commit, to compare)."""

import argparse
import http.client
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from _setup import percentile  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "50"))
ADDRESS, PASSWORD = "bench@example.test", "a long bench passphrase 2026"
TOKEN = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(tree: str, *args: str) -> str:
    """A management command of ``tree``, on the benchmark's database."""
    return subprocess.run([sys.executable, "manage.py", *args], cwd=tree, env=os.environ,
                          capture_output=True, text=True, check=True).stdout


def cookies_of(response) -> dict[str, str]:
    jar = {}
    for header, value in response.getheaders():
        if header.lower() == "set-cookie":
            name, _, rest = value.partition("=")
            jar[name] = rest.split(";", 1)[0]
    return jar


def sign_in(port: int) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/login/")
    page = conn.getresponse()
    body = page.read()
    jar = cookies_of(page)
    token = TOKEN.search(body).group(1).decode()
    form = (f"csrfmiddlewaretoken={token}&address={ADDRESS.replace('@', '%40')}"
            f"&password={PASSWORD.replace(' ', '+')}")
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "Cookie": "; ".join(f"{k}={v}" for k, v in jar.items()),
               "Referer": f"http://127.0.0.1:{port}/login/"}
    started = time.perf_counter()
    conn.request("POST", "/login/", body=form, headers=headers)
    response = conn.getresponse()
    response.read()
    took = time.perf_counter() - started
    conn.close()
    if response.status != 302:
        raise SystemExit(f"sign-in failed: HTTP {response.status}")
    return took


def bare_hash(stored: str) -> float:
    """One Argon2 check of ``stored`` with argon2-cffi alone (0 when it is not an Argon2 hash)."""
    if not stored.startswith("argon2$"):
        return 0.0
    from argon2 import PasswordHasher

    encoded = "$" + stored.removeprefix("argon2$")
    started = time.perf_counter()
    PasswordHasher().verify(encoded, PASSWORD)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL database URL to use")
    parser.add_argument("--tree", default=str(ROOT), help="checkout whose web server to run")
    args = parser.parse_args()
    os.environ["CORREIO_VAR_DIR"] = tempfile.mkdtemp(prefix="correio-bench-login-")
    os.environ.pop("REDIS_URL", None)
    if args.postgres:
        os.environ["DATABASE_URL"] = args.postgres
    else:
        os.environ.pop("DATABASE_URL", None)
    # The schema, the mailbox and its hash are made by the tree measured, with its hasher.
    manage(args.tree, "migrate", "-v0")
    manage(args.tree, "createdomain", "example.test")
    manage(args.tree, "createmailbox", ADDRESS, "--password", PASSWORD)
    stored = manage(args.tree, "shell", "-c",
                    "from django.contrib.auth.models import User;"
                    f"print(User.objects.get(username='{ADDRESS}').password)").strip()
    stored = stored.splitlines()[-1]  # after Django 5.2's "N objects imported automatically"
    print(f"{'PostgreSQL' if args.postgres else 'SQLite (WAL, synchronous=FULL)'}; "
          f"stored hash {stored.rsplit('$', 2)[0]}")
    port = free_port()
    conf = Path(args.tree) / "webmail" / "gunicorn_conf.py"
    how = ["-c", "python:webmail.gunicorn_conf"] if conf.exists() else ["-w", "2"]
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), *how, "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", "webmail.wsgi:application"],
        cwd=args.tree, env=os.environ, stdout=subprocess.DEVNULL)  # the access log
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        for _ in range(3):
            sign_in(port)  # warm both workers up
        times, hashes = [], []
        for _ in range(RUNS):
            times.append(sign_in(port))
            if taken := bare_hash(stored):
                hashes.append(taken)
    finally:
        server.terminate()
        server.wait(10)
    ms = [t * 1000 for t in times]
    hash_ms = [t * 1000 for t in hashes]
    print(f"webmail sign-in over HTTP, {RUNS} logins: p50 {statistics.median(ms):.0f} ms, "
          f"p95 {percentile(ms, 95):.0f} ms, max {max(ms):.0f} ms")
    if hash_ms:
        print(f"bare Argon2id check of the same hash, interleaved: p50 "
              f"{statistics.median(hash_ms):.0f} ms, p95 {percentile(hash_ms, 95):.0f} ms; "
              f"sign-in beyond the hash: p50 "
              f"{statistics.median(ms) - statistics.median(hash_ms):.0f} ms")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
