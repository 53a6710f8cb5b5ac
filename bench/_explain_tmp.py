import sys
from _setup import parse_args, setup_django
args = parse_args("x", lambda p: (p.add_argument("--reuse"), p.add_argument("terms", nargs="*")))
setup_django(args, "web", reuse=args.reuse)
from django.db import connection
from django.test.utils import CaptureQueriesContext
from mailcore.models import Mailbox
from mailcore.services.search import parse_query, search_messages
from webmail.views.common import page_of
mb = Mailbox.objects.get(address="bench@example.test")
for term in args.terms:
    with CaptureQueriesContext(connection) as ctx:
        page_of(search_messages(mb, parse_query(term)), None)
    for q in ctx.captured_queries:
        print(q["time"], q["sql"][:3000])
        if "mailcore_message" in q["sql"] and q["sql"].startswith("SELECT"):
            with connection.cursor() as c:
                c.execute("EXPLAIN ANALYZE " + q["sql"])
                print("\n".join(r[0] for r in c.fetchall()))
