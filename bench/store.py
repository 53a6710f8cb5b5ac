"""Store benchmark (issue 2): deliver 10,000 varied messages to one mailbox through the service
layer, then time listing the newest 50 (the webmail's first page) on a folder of that size.

Targets on these 2-core machines, SQLite: at least 500 deliveries/s and the newest 50 in under
10 ms."""

import random
import statistics
import time

from _setup import parse_args, percentile, setup_django

COUNT = 10_000


def varied_messages(count: int) -> list[bytes]:
    from tests.factories import make_message

    rng = random.Random(42)
    words = "mail server queue folder message thread reply quota invoice meeting lunch report".split()
    messages = []
    for i in range(count):
        body = " ".join(rng.choice(words) for _ in range(rng.randint(20, 800))) + "\n"
        kind = i % 5
        kwargs = {
            "subject": f"{rng.choice(words).title()} {i} — ünïcode {rng.choice(words)}",
            "sender": f"Sender {i % 97} <sender{i % 97}@remote{i % 7}.test>",
            "body": body,
        }
        if kind == 1:
            kwargs["html"] = f"<html><body><p>{body}</p></body></html>"
        elif kind == 2:
            kwargs["attachments"] = [(f"file{i}.bin", rng.randbytes(rng.randint(500, 20000)),
                                      "application/octet-stream")]
        elif kind == 3 and i > 10:
            kwargs["in_reply_to"] = f"<bench-{i - 3}@remote.test>"
            kwargs["references"] = f"<bench-{i - 7}@remote.test> <bench-{i - 3}@remote.test>"
        kwargs["message_id"] = f"<bench-{i}@remote.test>"
        messages.append(make_message(**kwargs))
    return messages


def main() -> None:
    args = parse_args(__doc__)
    label = setup_django(args, "store")
    from mailcore.models import Folder, Message
    from mailcore.services import accounts, delivery

    accounts.create_domain("example.test")
    box = accounts.create_mailbox("bench@example.test", "pw", quota=0)
    messages = varied_messages(COUNT)
    total_bytes = sum(len(m) for m in messages)

    start = time.perf_counter()
    for raw in messages:
        delivery.deliver_message(raw, ["bench@example.test"])
    elapsed = time.perf_counter() - start

    inbox = Folder.objects.get(mailbox=box, role="inbox")
    assert inbox.message_count == COUNT
    from django.db import connection

    if connection.vendor == "postgresql":
        # A running server's autovacuum analyzes a table after such growth; do it now so the
        # planner knows the folder is large (else it sorts instead of walking the index).
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE mailcore_message")
    columns = ("id", "uid", "subject", "from_name", "from_addr", "preview", "internal_date",
               "seen", "flagged", "has_attachments", "size")
    timings = []
    for _ in range(200):
        t0 = time.perf_counter()
        rows = list(
            Message.objects.filter(folder=inbox).order_by("-internal_date", "-id").values(*columns)[:50]
        )
        timings.append((time.perf_counter() - t0) * 1000)
        assert len(rows) == 50
    print(f"store benchmark on {label}")
    print(f"  delivered {COUNT} messages ({total_bytes / 1e6:.1f} MB) in {elapsed:.2f} s: "
          f"{COUNT / elapsed:.0f} deliveries/s")
    print(f"  newest 50 of {COUNT}: median {statistics.median(timings):.2f} ms, "
          f"p95 {percentile(timings, 95):.2f} ms")


if __name__ == "__main__":
    main()
