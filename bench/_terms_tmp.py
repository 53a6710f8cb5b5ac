import sys, time, statistics
from _setup import parse_args, setup_django
args = parse_args("x", lambda p: (p.add_argument("--reuse"), p.add_argument("terms", nargs="*")))
setup_django(args, "web", reuse=args.reuse)
from django.db import connection
from django.test.utils import CaptureQueriesContext
from mailcore.models import Mailbox
from mailcore.services.search import parse_query, search_messages
from webmail.views.common import page_of
mb = Mailbox.objects.get(address="bench@example.test")
inbox = mb.folders.get(role="inbox")
terms = args.terms or ["invoice", "from:bob budget", "subject:quarterly review", "has:attachment",
         "meeting is:unread", "project after:2000-01-01", "12345", "zyzzyva", '"invoice meeting lunch"', "subject:budget -invoice", "-invoice"]
for scope in (None, inbox):
    for term in terms:
        ts = []
        for _ in range(7):
            with CaptureQueriesContext(connection) as ctx:
                s = time.perf_counter()
                page = page_of(search_messages(mb, parse_query(term), scope), None)
                ts.append((time.perf_counter() - s) * 1000)
        print(f"{'inbox' if scope else 'all':5} {term:30} {statistics.median(ts):7.1f} ms max {max(ts):7.1f} rows {len(page.messages)} q {len(ctx.captured_queries)}")
        if "-v" in sys.argv[0:0]: pass
