"""Webmail benchmark: fills one mailbox with BENCH_MESSAGES messages (default 100,000) through
the real delivery path (so the search index is built as in production), then reports p50/p95
server time, through Django's test client, for the inbox page, the next page, opening a
message, a search and the live-update poll, with the number of queries each issues; then for
writing mail: opening the compose page, a draft autosave (a changed draft stored in Drafts), and
Send (the request until the message is queued, with its copy in Sent).

Targets (issue 7): p95 under 50 ms for list pages and opening a message, under 10 ms for the
live poll, under 200 ms for a search; on SQLite and on PostgreSQL.

``--only conversations`` groups the filled messages into threads of five (by rewriting their
cached thread ids), switches the list to conversations and measures its pages and opening one.

Usage: python bench/web.py [--postgres URL] [--only search|conversations] [--reuse DIR]
(BENCH_MESSAGES=20000 for a quicker run; ``--reuse DIR`` keeps the filled data between runs)."""

import re
import shutil
import statistics
import time
from urllib.parse import quote

from _setup import parse_args, setup_django


def _options(parser) -> None:
    parser.add_argument("--only", choices=["search", "conversations"],
                        help="only measure searches, or the conversation list (issue 17)")
    parser.add_argument("--reuse", metavar="DIR",
                        help="keep the filled data in DIR (and its database) for later runs")


ARGS = parse_args(__doc__.splitlines()[0], _options)
LABEL = setup_django(ARGS, "web", reuse=ARGS.reuse)

import os  # noqa: E402
import random  # noqa: E402

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


def measure(client: Client, label: str, url_fn, **headers) -> None:
    times, queries = [], 0
    for i in range(RUNS):
        url = url_fn(i)
        with CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            response = client.get(url, **headers)
            elapsed = time.perf_counter() - start
        assert response.status_code in (200, 204), (url, response.status_code)
        times.append(elapsed * 1000)
        queries = max(queries, len(ctx.captured_queries))
    times.sort()
    p50 = statistics.median(times)
    p95 = times[int(len(times) * 0.95) - 1]
    print(f"{label:<28} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   queries {queries}")


def main() -> None:
    from mailcore.models import Mailbox

    mailbox = Mailbox.objects.filter(address="bench@example.test").first()
    if mailbox is not None and Message.objects.filter(mailbox=mailbox).count() == COUNT:
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
    print(f"webmail benchmark on {LABEL}, {COUNT} messages, {RUNS} runs each")
    if ARGS.only == "conversations":
        conversations(client, mailbox, inbox, hx)
        if not ARGS.reuse:
            shutil.rmtree(os.environ["CORREIO_VAR_DIR"], ignore_errors=True)
        return
    if not ARGS.only:
        measure(client, "live poll (no change)", lambda i: poll, **hx)
        measure(client, "inbox page (full)", lambda i: f"/f/{inbox.pk}/")
        measure(client, "inbox page (htmx)", lambda i: f"/f/{inbox.pk}/", **hx)
        measure(client, "next page (htmx rows)", lambda i: next_url + "&rows=1", **hx)
        measure(client, "open message (htmx)", lambda i: f"/m/{ids[i % len(ids)]}/", **hx)
        measure(client, "message body frame", lambda i: f"/m/{ids[i % len(ids)]}/body/")
    measure(client, "search, all folders", lambda i: f"/search/?scope=all&q={terms[i % len(terms)]}", **hx)
    measure(client, "search, inbox", lambda i: f"/search/?folder={inbox.pk}&q={terms[i % len(terms)]}", **hx)
    measure(client, "search, rare words", lambda i: f"/search/?scope=all&q={quote(rare[i % len(rare)])}", **hx)
    if ARGS.only != "search":
        compose(client, mailbox)
    if not ARGS.reuse:
        shutil.rmtree(os.environ["CORREIO_VAR_DIR"], ignore_errors=True)


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
    first = client.get("/compose/")
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
    ids = []
    for _ in range(RUNS):
        ids.append(int(re.search(r"/compose/(\d+)/",
                                 client.get("/compose/")["Location"]).group(1)))
    before = OutboundMessage.objects.count()
    measure_post(client, "send (until queued)", lambda i: f"/compose/{ids[i]}/",
                 lambda i: fields(i, action="send"), **hx)
    assert OutboundMessage.objects.count() == before + RUNS


if __name__ == "__main__":
    main()
