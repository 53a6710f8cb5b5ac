"""Webmail benchmark: fills one mailbox with BENCH_MESSAGES messages (default 100,000) through
the real delivery path (so the search index is built as in production), then starts gunicorn
with `make run`'s configuration (webmail/gunicorn_conf.py: gthread workers, keep-alive, access
log) on a loopback port and reports p50/p95 as a browser sees them,
through a real HTTP client (keep-alive, the whole response read), for the inbox page, the next
page, opening a message (the reading pane, then its body frame, as the browser asks for them),
searches and the live-update poll. A second column gives the p95 of the same request through
Django's test client (server time without the HTTP server), with the number of queries each
issues. Then for writing mail, through the test client: the compose page, a draft autosave and
Send (the request until the message is queued, with its copy in Sent).

Targets (issue 16): over HTTP, p95 at most 25 ms for the list and the next page, 50 ms to open a
message, 60 ms for a search; on SQLite and on PostgreSQL.

``--only conversations`` groups the filled messages into threads of five (by rewriting their
cached thread ids), switches the list to conversations and measures its pages and opening one.

Usage: python bench/web.py [--postgres URL] [--only search|conversations] [--reuse DIR]
(BENCH_MESSAGES=20000 for a quicker run; ``--reuse DIR`` keeps the filled data between runs;
BENCH_GUNICORN="--workers 4" adds gunicorn options to webmail/gunicorn_conf.py's)."""

import re
import shutil
import statistics
import time
from pathlib import Path
from urllib.parse import quote

from _setup import parse_args, setup_django


def _options(parser) -> None:
    parser.add_argument("--only", choices=["search", "conversations"],
                        help="only measure searches, or the conversation list (issue 17)")
    parser.add_argument("--reuse", metavar="DIR",
                        help="keep the filled data in DIR (and its database) for later runs")


ARGS = parse_args(__doc__.splitlines()[0], _options)
LABEL = setup_django(ARGS, "web", reuse=ARGS.reuse)

import http.client  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import shlex  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from contextlib import contextmanager  # noqa: E402

from django.conf import settings  # noqa: E402
from django.db import connection, reset_queries  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from mailcore.models import Message  # noqa: E402
from mailcore.services import accounts  # noqa: E402
from mailcore.services.delivery import deliver_to_inboxes  # noqa: E402
from tests.factories import make_message  # noqa: E402

COUNT = int(os.environ.get("BENCH_MESSAGES", "100000"))
RUNS = int(os.environ.get("BENCH_RUNS", "50"))
WORDS = ("invoice meeting project report lunch travel budget review draft contract launch "
         "holiday picture family weekend update security release server backup quarterly").split()
PEOPLE = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]


def fill(mailbox_id: int) -> None:
    rng = random.Random(7)
    batch = []
    started = time.perf_counter()
    for i in range(COUNT):
        subject = " ".join(rng.sample(WORDS, 3)) + f" #{i}"
        body = " ".join(rng.choice(WORDS) for _ in range(60)) + "\n"
        who = rng.choice(PEOPLE)
        raw = make_message(subject=subject, sender=f"{who.title()} <{who}@remote.test>",
                           body=body, message_id=f"<bench-{i}@remote.test>")
        batch.append((raw, [mailbox_id]))
        if len(batch) == 500:
            deliver_to_inboxes(batch)
            batch = []
            done = i + 1
            if done % 10000 == 0:
                rate = done / (time.perf_counter() - started)
                print(f"  delivered {done} ({rate:.0f}/s)", flush=True)
    if batch:
        deliver_to_inboxes(batch)


def p95(times: list[float]) -> float:
    times = sorted(times)
    return times[int(len(times) * 0.95) - 1]


def client_times(client: Client, urls, headers: dict) -> tuple[list[float], int]:
    """Milliseconds per step through the test client (each step: one or more GETs)."""
    times, queries = [], 0
    for step in urls:
        with CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            for url in step:
                response = client.get(url, **headers)
                assert response.status_code in (200, 204), (url, response.status_code)
            times.append((time.perf_counter() - start) * 1000)
        queries = max(queries, len(ctx.captured_queries))
    return times, queries


class Http:
    """A browser-like HTTP/1.1 client: one keep-alive connection, the session cookie."""

    def __init__(self, port: int, cookie: str):
        self.port = port
        self.cookie = cookie
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def get(self, url: str, headers: dict) -> int:
        wire = {"Cookie": self.cookie, "Host": f"127.0.0.1:{self.port}",
                "Accept-Encoding": "identity"}
        if headers:
            wire["HX-Request"] = "true"
        try:
            self.conn.request("GET", url, headers=wire)
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # The server closed the idle connection (gunicorn's keep-alive timeout passed
            # while the test client was measured); a browser reconnects and asks again.
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.conn.request("GET", url, headers=wire)
            response = self.conn.getresponse()
        response.read()
        return response.status

    def times(self, urls, headers: dict) -> list[float]:
        times = []
        for step in urls:
            start = time.perf_counter()
            for url in step:
                status = self.get(url, headers)
                assert status in (200, 204), (url, status)
            times.append((time.perf_counter() - start) * 1000)
        return times


HTTP: Http | None = None


def measure(client: Client, label: str, url_fn, **headers) -> None:
    """One line: HTTP p50/p95 through gunicorn, then the test client's p95 and query count.
    ``url_fn(i)`` gives a URL, or a tuple of URLs fetched one after the other as one step."""
    steps = []
    for i in range(RUNS):
        urls = url_fn(i)
        steps.append((urls,) if isinstance(urls, str) else tuple(urls))
    hx = {"HTTP_HX_REQUEST": "true"} if headers else {}
    ctimes, queries = client_times(client, steps, hx)
    line = f"{label:<30}"
    if HTTP is not None:
        HTTP.times(steps[:5], headers)  # warm the workers
        htimes = HTTP.times(steps, headers)
        line += f" HTTP p50 {statistics.median(htimes):6.1f}  p95 {p95(htimes):6.1f} ms  |"
    line += f" test client p50 {statistics.median(ctimes):6.1f}  p95 {p95(ctimes):6.1f} ms"
    print(f"{line}   queries {queries}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn_server():
    """gunicorn as `make run` starts it (the Procfile's configuration), serving this data folder
    and database on a loopback port; its access log (stdout) is written, to nowhere."""
    port = free_port()
    env = dict(os.environ, DEBUG="false", ALLOWED_HOSTS="127.0.0.1",
               CORREIO_WEB_ADDR=f"127.0.0.1:{port}")
    options = shlex.split(os.environ.get("BENCH_GUNICORN", ""))
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:webmail.gunicorn_conf",
         "webmail.wsgi:application", "--log-level", "warning", *options],
        cwd=str(Path(__file__).resolve().parent.parent), env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("gunicorn did not start") from None
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    from mailcore.models import Mailbox

    mailbox = Mailbox.objects.filter(address="bench@example.test").first()
    # The Inbox's count: a measured Send leaves copies in Sent.
    if mailbox is not None and Message.objects.filter(
            mailbox=mailbox, folder__role="inbox").count() == COUNT:
        print(f"{LABEL}: reusing {COUNT} messages in {os.environ['CORREIO_VAR_DIR']}", flush=True)
    else:
        if mailbox is not None:
            raise SystemExit(f"{ARGS.reuse} holds another fill: remove it (or its database)")
        accounts.create_domain("example.test")
        mailbox = accounts.create_mailbox("bench@example.test", "bench password 123")
        print(f"{LABEL}: filling {COUNT} messages ...", flush=True)
        start = time.perf_counter()
        fill(mailbox.pk)
        print(f"filled in {time.perf_counter() - start:.0f} s", flush=True)
    if connection.vendor == "postgresql":
        # A running server's autovacuum analyzes tables after such growth; do it now so the
        # planner knows their sizes.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = Client()
    client.force_login(mailbox.user)
    with gunicorn_server() as port:
        global HTTP
        HTTP = Http(port, f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}")
        run(client, mailbox)
        HTTP = None
    if ARGS.only != "search":
        compose(client, mailbox)
    if not ARGS.reuse:
        shutil.rmtree(os.environ["CORREIO_VAR_DIR"], ignore_errors=True)


def run(client: Client, mailbox) -> None:
    inbox = mailbox.folders.get(role="inbox")
    hx = {"HTTP_HX_REQUEST": "true"}
    first = client.get(f"/f/{inbox.pk}/").content.decode()
    next_url = re.search(r'<li id="more" class="more"><a href="([^"]+)"', first).group(1)
    next_url = next_url.replace("&amp;", "&")
    poll = re.search(r'<div id="poll" hidden hx-get="([^"]+)"', first).group(1).replace("&amp;", "&")
    ids = list(Message.objects.filter(folder=inbox).order_by("?").values_list("pk", flat=True)[:RUNS])
    terms = ["invoice", "from:bob budget", "subject:quarterly review", "has:attachment",
             "meeting is:unread", "project after:2000-01-01"]
    # Rare words: a subject's number matches one message, a made-up word none, a phrase few.
    rare = [f"{n}" for n in (12345, 67890, 4242)] + ["zyzzyva", '"invoice meeting lunch"',
                                                     "subject:budget -invoice"]
    reset_queries()
    print(f"webmail benchmark on {LABEL}, {COUNT} messages, {RUNS} runs each; HTTP through "
          f"gunicorn -c python:webmail.gunicorn_conf {os.environ.get('BENCH_GUNICORN', '')}")
    if ARGS.only == "conversations":
        conversations(client, mailbox, inbox, hx)
        return
    if not ARGS.only:
        measure(client, "live poll (no change)", lambda i: poll, **hx)
        measure(client, "inbox page (full)", lambda i: f"/f/{inbox.pk}/")
        measure(client, "inbox page (htmx)", lambda i: f"/f/{inbox.pk}/", **hx)
        measure(client, "next page (htmx rows)", lambda i: next_url + "&rows=1", **hx)
        measure(client, "open message (pane + frame)",
                lambda i: (f"/m/{ids[i % len(ids)]}/", f"/m/{ids[i % len(ids)]}/body/"), **hx)
        measure(client, "open message (htmx pane)", lambda i: f"/m/{ids[i % len(ids)]}/", **hx)
        measure(client, "message body frame", lambda i: f"/m/{ids[i % len(ids)]}/body/")
    measure(client, "search, all folders", lambda i: f"/search/?scope=all&q={quote(terms[i % len(terms)])}", **hx)
    measure(client, "search, inbox", lambda i: f"/search/?folder={inbox.pk}&q={quote(terms[i % len(terms)])}", **hx)
    measure(client, "search, rare words", lambda i: f"/search/?scope=all&q={quote(rare[i % len(rare)])}", **hx)


def conversations(client: Client, mailbox, inbox, hx) -> None:
    """The conversation list on the same mailbox, its messages in threads of five."""
    from webmail.models import WebmailSettings

    WebmailSettings.objects.filter(mailbox=mailbox).update(conversation_list=False)
    measure(client, "inbox page (htmx), single messages", lambda i: f"/f/{inbox.pk}/", **hx)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {Message._meta.db_table} SET thread_id = 'bt' || CAST(id / 5 AS TEXT)"
                       " WHERE mailbox_id = %s", [mailbox.pk])
    WebmailSettings.objects.update_or_create(mailbox=mailbox,
                                             defaults={"conversation_list": True})
    first = client.get(f"/f/{inbox.pk}/").content.decode()
    next_url = re.search(r'<li id="more" class="more"><a href="([^"]+)"', first).group(1)
    next_url = next_url.replace("&amp;", "&")
    ids = list(Message.objects.filter(folder=inbox).order_by("?").values_list("pk", flat=True)[:RUNS])
    measure(client, "conversations page (full)", lambda i: f"/f/{inbox.pk}/")
    measure(client, "conversations page (htmx)", lambda i: f"/f/{inbox.pk}/", **hx)
    measure(client, "conversations next page (htmx rows)", lambda i: next_url + "&rows=1", **hx)
    measure(client, "open conversation (htmx)", lambda i: f"/m/{ids[i % len(ids)]}/conversation/",
            **hx)


def measure_post(client: Client, label: str, url_fn, data_fn, ok=(200, 204), **headers) -> None:
    times, queries = [], 0
    for i in range(RUNS):
        url, data = url_fn(i), data_fn(i)
        with CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            response = client.post(url, data, **headers)
            elapsed = time.perf_counter() - start
        assert response.status_code in ok, (url, response.status_code, response.content[:300])
        times.append(elapsed * 1000)
        queries = max(queries, len(ctx.captured_queries))
    times.sort()
    p50 = statistics.median(times)
    p95 = times[int(len(times) * 0.95) - 1]
    print(f"{label:<28} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   queries {queries}")


def compose(client: Client, mailbox) -> None:
    """Compose page, draft autosave and Send, on the same full mailbox."""
    from mailcore.models import OutboundMessage

    settings.CORREIO_OUTBOUND_DISPATCH = False  # measure the request, not a broker
    hx = {"HTTP_HX_REQUEST": "true"}
    first = client.post("/compose/")
    cid = int(re.search(r"/compose/(\d+)/", first["Location"]).group(1))
    measure(client, "compose page (full)", lambda i: f"/compose/{cid}/")

    def fields(i, **extra):
        data = {"from_addr": mailbox.address, "to": "Carol <carol@remote.test>, dave@remote.test",
                "cc": "", "bcc": "", "subject": f"Weekly report {i}",
                "body": "Hello,\n\n" + "The numbers are in. " * 40 + f"\n\nVersion {i}\n"}
        data.update(extra)
        return data

    measure_post(client, "draft autosave (changed)", lambda i: f"/compose/{cid}/autosave/",
                 fields, **hx)
    def fresh(i):
        # A new message for each Send, started just before it (untimed): the webmail keeps
        # only a few unsent ones (composing.make_room), so 50 started at once would not last.
        started = client.post("/compose/")["Location"]
        return re.search(r"/compose/\d+/", started).group(0)

    before = OutboundMessage.objects.count()
    measure_post(client, "send (until queued)", fresh, lambda i: fields(i, action="send"), **hx)
    assert OutboundMessage.objects.count() == before + RUNS


if __name__ == "__main__":
    main()
