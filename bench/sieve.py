"""Sieve benchmark (issue 18): what a 20-rule script adds per delivered message.

Delivers the same varied messages three ways through the service layer the MX uses, one
message per transaction as under light load:
  before   the group-commit delivery alone (``deliver_to_inboxes``), as before Sieve existed;
  hook     the Sieve hook first (``deliver_filtered``, one query, no script) then the same;
  script   the hook with an active 20-rule script (filing, flags, list and sender tests).
Also times the interpreter alone. Target: the script adds <= 2 ms per message."""

import statistics
import time

from _setup import parse_args, setup_django
from store import varied_messages

COUNT = 1000

SCRIPT = ['require ["fileinto", "imap4flags", "envelope", "relational", '
          '"comparator-i;ascii-numeric", "variables"];']
for n in range(8):
    SCRIPT.append(f'if header :contains "list-id" "list{n}.remote.test" '
                  f'{{ fileinto "Lists/{n}"; stop; }}')
for n in range(5):
    SCRIPT.append(f'if address :domain :is "from" "partner{n}.test" '
                  f'{{ addflag "\\\\Flagged"; }}')
for word in ("invoice", "urgent", "newsletter", "unsubscribe"):
    SCRIPT.append(f'if header :contains "subject" "{word}" {{ addflag "${word}"; }}')
SCRIPT.append('if envelope :localpart :is "to" "nobody" { discard; stop; }')
SCRIPT.append('if header :count "gt" :comparator "i;ascii-numeric" "received" "30" '
              '{ discard; stop; }')
SCRIPT.append('if header :matches "subject" "*[spam]*" { fileinto "Junk"; stop; }')
SCRIPT = "\n".join(SCRIPT) + "\n"


def main() -> None:
    args = parse_args(__doc__)
    label = setup_django(args, "sieve")
    from mailcore.services import accounts, filters
    from mailcore.services.delivery import deliver_to_inboxes
    from mailcore.services.filtering import deliver_filtered
    from mailcore.sieve.interpreter import Envelope, run_script

    accounts.create_domain("example.test")
    boxes = {name: accounts.create_mailbox(f"{name}@example.test", "pw", quota=0)
             for name in ("before", "hook", "script")}
    filters.put_script(boxes["script"], "rules", SCRIPT, activate=True)
    assert SCRIPT.count("\nif ") == 20
    messages = varied_messages(COUNT)

    script = filters.check_script(SCRIPT)
    envelope = Envelope("sender@remote.test", "script@example.test")
    start = time.perf_counter()
    for raw in messages:
        run_script(script, raw, envelope)
    interpreter_ms = (time.perf_counter() - start) * 1000 / COUNT

    from mailcore.services.filtering import plan

    def per_message(func) -> float:
        start = time.perf_counter()
        for raw in messages:
            func(raw)
        return (time.perf_counter() - start) * 1000 / COUNT

    lookup_ms = per_message(lambda raw: filters.active_scripts([boxes["hook"].pk]))
    plan_ms = per_message(lambda raw: plan(raw, "sender@remote.test", ["script@example.test"],
                                           [boxes["script"].pk]))

    def timed(variants: dict) -> dict[str, list[float]]:
        # Interleaved, in a rotating order, so that the database's growth and the machine's
        # other load weigh the same on every variant.
        times: dict[str, list[float]] = {name: [] for name in variants}
        names = list(variants)
        for i, raw in enumerate(messages):
            for name in names[i % 3:] + names[:i % 3]:
                t0 = time.perf_counter()
                variants[name](raw)
                times[name].append((time.perf_counter() - t0) * 1000)
        return times

    before_id, hook_id, script_id = (boxes[n].pk for n in ("before", "hook", "script"))

    def with_hook(mailbox_id, address):
        def deliver(raw):
            result = deliver_filtered(raw, "sender@remote.test", [address], [mailbox_id])
            if not result.handled:
                deliver_to_inboxes([(raw, [mailbox_id])])
        return deliver

    runs = timed({
        "before": lambda raw: deliver_to_inboxes([(raw, [before_id])]),
        "hook": with_hook(hook_id, "hook@example.test"),
        "script": with_hook(script_id, "script@example.test"),
    })
    print(f"sieve benchmark on {label}: {COUNT} varied messages, one per transaction")
    print(f"  interpreter alone, 20-rule script: {interpreter_ms:.3f} ms/message")
    print(f"  script look-up alone (no script): {lookup_ms:.3f} ms/message")
    print(f"  look-up + recipient + interpreter (the added work): {plan_ms:.3f} ms/message")
    for name, times in runs.items():
        print(f"  {name:6s}: mean {statistics.mean(times):.2f} ms, "
              f"median {statistics.median(times):.2f} ms per message")
    base = statistics.mean(runs["before"])
    print(f"  added by the hook without a script: {statistics.mean(runs['hook']) - base:+.2f} ms")
    print(f"  added by a 20-rule script:          {statistics.mean(runs['script']) - base:+.2f} ms"
          " (target <= 2 ms)")


if __name__ == "__main__":
    main()
