"""One worker pass over the outbound queue, the retry schedule, and the DSNs.

- ``relay_batch`` (``deliver_outbound`` for one message) is one worker pass over a batch of
  messages: the task's own, plus other messages due now at the same destinations (a worker
  behind a burst empties the queue in batches, not one task per message). It takes their locks
  with one conditional update (so two workers never deliver the same recipients), groups the due
  recipients by destination (one SMTP transaction per message, one kept-open session per
  destination), and records each destination's results, in ONE transaction with bulk updates,
  before the next destination.
- Retries follow a backoff schedule (RFC 5321 §4.5.4.1: retry at least 30 minutes apart after
  the first tries, give up after 4-5 days); 4xx and network failures defer, 5xx bounce.
- Bounces are RFC 3464 DSNs from the null sender ``<>`` to the envelope sender, queued (or
  delivered locally) in the same transaction that records the failure, so no bounce is lost.
  A message from ``<>`` is never bounced (RFC 5321 §4.5.5). A "delayed" DSN goes out once a
  recipient has waited ``CORREIO_OUTBOUND_DELAY_WARNING``."""

import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from mailcore.exceptions import MailboxInactive, MailError, QuotaExceeded, UnknownRecipient
from mailcore.mime.dsn import DsnRecipient, build_dsn, status_from_reply
from mailcore.mime.trace import with_return_path
from mailcore.mime.wire import clean_message, downgrade_to_7bit, has_eight_bit, header_has_eight_bit
from mailcore.models import Blob, DeliveryAttempt, OutboundMessage, OutboundRecipient
from mailcore.models.outbound import PENDING_STATES, RecipientState
from mailcore.services import dkim
from mailcore.services.accounts import is_local_domain
from mailcore.services.outbound.queue import deliver_local, enqueue_outbound
from mailcore.transports import Outgoing, RecipientResult, get_transport

logger = logging.getLogger("correio.outbound")

LOCAL_ROUTE = "\0local"


@dataclass
class RunReport:
    claimed: bool
    delivered: int = 0
    deferred: int = 0
    bounced: int = 0
    expired: int = 0
    more: bool = False  # due recipients were left for another pass (attempt deadline)
    leftover: list[int] = field(default_factory=list)  # the messages they are in


# --- One worker pass ------------------------------------------------------------------------


def _lock_free(now: datetime, token: str) -> Q:
    """The lock is free, expired, or already ours (the same Celery task delivered again after
    its worker died)."""
    return Q(locked_until__isnull=True) | Q(locked_until__lt=now) | Q(lock_token=token)


def _claim(message_id: int, token: str, now: datetime) -> bool:
    """Take the message's lock with a conditional update."""
    lease = timedelta(seconds=settings.CORREIO_OUTBOUND_LOCK_SECONDS)
    return bool(
        OutboundMessage.objects.filter(pk=message_id, finished=False)
        .filter(_lock_free(now, token))
        .update(lock_token=token, locked_until=now + lease)
    )


def _claim_many(candidates: Sequence[int], token: str, now: datetime) -> list[int]:
    """Take the lock of each candidate that is free (one conditional update, so two workers
    never hold the same message); the ids actually taken, in the candidates' order."""
    if not candidates:
        return []
    lease = timedelta(seconds=settings.CORREIO_OUTBOUND_LOCK_SECONDS)
    taken = (
        OutboundMessage.objects.filter(pk__in=candidates, finished=False)
        .filter(_lock_free(now, token))
        .update(lock_token=token, locked_until=now + lease)
    )
    if taken == len(candidates):
        return list(candidates)
    if not taken:
        return []
    ours = set(OutboundMessage.objects.filter(pk__in=candidates, lock_token=token)
               .values_list("pk", flat=True))
    return [pk for pk in candidates if pk in ours]


def _release_many(message_ids: Iterable[int], token: str) -> None:
    """Release our lock on these messages, each marked finished when nothing waits in it."""
    ids = list(message_ids)
    if not ids:
        return
    waiting = set(
        OutboundRecipient.objects.filter(message_id__in=ids, state__in=PENDING_STATES)
        .values_list("message_id", flat=True)
    )
    with transaction.atomic():
        for finished, subset in ((True, [i for i in ids if i not in waiting]),
                                 (False, [i for i in ids if i in waiting])):
            if subset:
                OutboundMessage.objects.filter(pk__in=subset, lock_token=token).update(
                    lock_token="", locked_until=None, finished=finished
                )


def deliver_outbound(message_id: int, token: str | None = None, *,
                     batch: int | None = None) -> RunReport:
    """Try every due recipient of one queued message once, recording each result; on the way,
    other due messages for the same destinations ride along (see :func:`relay_batch`).

    ``token`` identifies the caller's claim (the Celery task id); a message locked by another
    token is left alone (``claimed`` is False). Safe to run any number of times: delivered,
    bounced and expired recipients are never tried again."""
    return relay_batch([message_id], token, batch=batch)


def relay_batch(message_ids: Sequence[int], token: str | None = None, *,
                  batch: int | None = None) -> RunReport:
    """One worker pass over several queued messages: the given ones, plus (up to ``batch``
    messages, ``CORREIO_OUTBOUND_BATCH``, and ``CORREIO_OUTBOUND_BATCH_BYTES`` in all) other
    messages with recipients due now at the same destinations, which the worker would
    otherwise take one task at a time.

    Each message's lock is taken with one conditional update for the batch, so two workers
    never hold the same message; the due recipients are grouped by destination and each
    destination's messages go out one after the other over one kept-open SMTP session
    (pipelined where the far side allows, see :mod:`mailcore.transports.smtp`). Each
    destination's results, the DSNs they call for and the release of the messages they
    complete are recorded in ONE transaction. ``claimed`` is False when none of
    ``message_ids`` could be taken (finished, deleted, or another worker holds them); the pass
    then still takes messages due at their destinations that nobody holds. Messages left over (a batch over the byte budget, or the
    attempt deadline passed) are released and listed in ``leftover`` for a new task."""
    token = token or uuid.uuid4().hex
    now = timezone.now()
    limit = max(batch if batch is not None else settings.CORREIO_OUTBOUND_BATCH, 1)
    byte_budget = settings.CORREIO_OUTBOUND_BATCH_BYTES
    # A read first: tasks whose messages another batch took already end here, writing nothing.
    rows = {
        pk: (size, hold) for pk, size, hold, lock_token, locked_until in
        OutboundMessage.objects.filter(pk__in=list(message_ids), finished=False)
        .values_list("pk", "size", "hold_until", "lock_token", "locked_until")
        if locked_until is None or locked_until < now or lock_token == token
    }
    wanted, leftover, size = [], [], 0
    for pk in dict.fromkeys(message_ids):
        if pk not in rows:
            continue
        if wanted and (len(wanted) >= limit or size + rows[pk][0] > byte_budget):
            leftover.append(pk)
            continue
        wanted.append(pk)
        size += rows[pk][0]
    claimed = _claim_many(wanted, token, now)
    report = RunReport(claimed=bool(claimed), leftover=leftover)
    if not claimed:
        # Our messages rode along with another pass (or are taken): take what else is due at
        # their destinations, so a worker behind a burst never idles on spent tasks.
        domains = set(OutboundRecipient.objects.filter(message_id__in=list(message_ids))
                      .values_list("domain", flat=True).distinct())
        claimed = _ride_along([], domains, token, now, limit, byte_budget)
        if not claimed:
            return report
        size = sum(OutboundMessage.objects.filter(pk__in=claimed).values_list("size", flat=True))
    held: set[int] = set(claimed)
    try:
        _pass(claimed, token, now, limit, byte_budget - size, report, held)
    finally:
        if held:
            _release_many(held, token)
    report.more = bool(report.leftover)
    return report


def _ride_along(claimed: list[int], domains: set[str], token: str, now: datetime, room: int,
                byte_room: int) -> list[int]:
    """Claim up to ``room`` more messages (oldest first) with recipients due now at one of
    ``domains``, not held, within ``byte_room`` bytes; also any message our token still holds
    (this task run again after its worker died)."""
    if room <= 0 or not domains:
        return []
    due = OutboundRecipient.objects.filter(
        message=OuterRef("pk"), state__in=PENDING_STATES, next_attempt__lte=now,
        domain__in=sorted(domains),
    )
    candidates = (
        OutboundMessage.objects.filter(finished=False)
        .exclude(pk__in=claimed)
        .filter(
            Q(lock_token=token)
            | (Q(Exists(due))
               & (Q(locked_until__isnull=True) | Q(locked_until__lt=now))
               & (Q(hold_until__isnull=True) | Q(hold_until__lte=now)))
        )
        .order_by("pk")
        .values_list("pk", "size")[:room]
    )
    picked, total = [], 0
    for pk, size in candidates:
        if total + size > byte_room:
            break
        picked.append(pk)
        total += size
    return _claim_many(picked, token, now)


def _pass(claimed: list[int], token: str, now: datetime, limit: int, byte_room: int,
          report: RunReport, held: set[int]) -> None:
    everyone: dict[int, list[OutboundRecipient]] = defaultdict(list)
    for recipient in OutboundRecipient.objects.filter(message_id__in=claimed):
        everyone[recipient.message_id].append(recipient)

    def due_of(message_ids) -> set[str]:
        return {r.domain for pk in message_ids for r in everyone[pk]
                if r.state in PENDING_STATES and r.next_attempt <= now}

    extra = _ride_along(claimed, due_of(claimed), token, now, limit - len(claimed), byte_room)
    if extra:
        held.update(extra)
        for recipient in OutboundRecipient.objects.filter(message_id__in=extra):
            everyone[recipient.message_id].append(recipient)
    messages = {
        m.pk: m for m in OutboundMessage.objects.filter(pk__in=claimed + extra)
    }
    blobs = dict(Blob.objects.filter(pk__in={m.blob_id for m in messages.values()})
                 .values_list("pk", "data"))
    transport = get_transport()
    local_domains: dict[str, bool] = {}
    # Destination → [(message, its due recipients there)], in message order.
    groups: dict[str, list[tuple[OutboundMessage, list[OutboundRecipient]]]] = defaultdict(list)
    for pk in claimed + extra:
        message = messages.get(pk)
        if message is None:
            continue  # deleted meanwhile (admin)
        if message.hold_until and message.hold_until > now:
            continue
        per_route: dict[str, list[OutboundRecipient]] = defaultdict(list)
        for recipient in everyone[pk]:
            if recipient.state not in PENDING_STATES or recipient.next_attempt > now:
                continue
            if recipient.domain not in local_domains:
                local_domains[recipient.domain] = is_local_domain(recipient.domain)
            key = LOCAL_ROUTE if local_domains[recipient.domain] else transport.route(
                recipient.domain
            )
            per_route[key].append(recipient)
        for key, recipients in per_route.items():
            groups[key].append((message, recipients))
    # The last destination of each message: its release commits with that destination's results.
    last_route: dict[int, str] = {}
    for key, entries in groups.items():
        for message, _ in entries:
            last_route[message.pk] = key
    # Messages with nothing due (all settled, or held) are released by the caller.
    budget = settings.CORREIO_RELAY_ATTEMPT_DEADLINE
    started = time.monotonic()
    prepared: dict[int, _Prepared] = {}
    for key, entries in groups.items():
        if time.monotonic() - started >= budget:
            break
        # The deadline of this destination's attempts; the lease is renewed when each
        # destination's results are recorded, and the claim covered the first one.
        deadline = time.monotonic() + budget
        outcomes: list[tuple[OutboundMessage, list[OutboundRecipient], list[RecipientResult]]] = []
        with transaction.atomic() if key == LOCAL_ROUTE else nullcontext():
            for message, recipients in entries:
                if message.pk not in held:
                    continue
                raw = bytes(blobs[message.blob_id])
                if key == LOCAL_ROUTE:
                    # Final delivery writes the reverse-path (RFC 5321 §4.4).
                    results = _deliver_local(with_return_path(raw, message.mail_from),
                                             message.mail_from,
                                             recipients)
                elif time.monotonic() >= deadline:
                    break  # out of time: the rest stays due, for a new task
                else:
                    if message.pk not in prepared:
                        prepared[message.pk] = _Prepared(message, raw)
                    outgoing = prepared[message.pk].outgoing([r.address for r in recipients])
                    results = transport.deliver(outgoing, deadline)
                outcomes.append((message, recipients, results))
                if key != LOCAL_ROUTE and _destination_down(results):
                    # Postfix's dead destination: the far side is unreachable or timed out
                    # with no reply; the other messages there wait for their retry without
                    # each spending a connection timeout on it.
                    for other, others in entries[len(outcomes):]:
                        if other.pk in held:
                            outcomes.append((other, others, [
                                RecipientResult(r.address, "deferred", None, results[0].reply,
                                                results[0].host) for r in others]))
                    break
            released = _record_batch(outcomes, blobs, token, report, key, last_route, held)
        held.difference_update(released)
    report.leftover.extend(
        pk for pk in sorted(held) if any(
            r.state in PENDING_STATES and r.next_attempt <= now for r in everyone[pk])
    )


def _destination_down(results: Sequence[RecipientResult]) -> bool:
    return bool(results) and all(r.outcome == "deferred" and r.code is None for r in results)


class _Prepared:
    """The message as it goes out, made once per pass: clean lines, DKIM-signed, and its
    7-bit form only if some server needs it."""

    def __init__(self, message: OutboundMessage, raw: bytes):
        self.message = message
        self.clean = clean_message(raw)
        self.eight_bit = has_eight_bit(self.clean)
        self.utf8_headers = self.eight_bit and header_has_eight_bit(self.clean)
        self.signer = dkim.signer_for(self.clean, message.mail_from)
        self._rendered: dict[bool, bytes] = {}

    def render(self, seven_bit: bool) -> bytes:
        if seven_bit not in self._rendered:
            body = clean_message(downgrade_to_7bit(self.clean)) if seven_bit else self.clean
            self._rendered[seven_bit] = dkim.sign(body, self.signer) if self.signer else body
        return self._rendered[seven_bit]

    def outgoing(self, recipients: list[str]) -> Outgoing:
        addresses = [self.message.mail_from, *recipients]
        return Outgoing(
            mail_from=self.message.mail_from,
            recipients=recipients,
            render=self.render,
            size=len(self.clean),
            eight_bit=self.eight_bit,
            needs_smtputf8=self.utf8_headers or any(not a.isascii() for a in addresses),
        )


def _deliver_local(raw: bytes, sender: str,
                   recipients: Sequence[OutboundRecipient]) -> list[RecipientResult]:
    """Local recipients of a held message, or of an alias: the store, no network."""
    results = []
    for recipient in recipients:
        address = recipient.address
        try:
            with transaction.atomic():
                deliver_local(raw, sender, [address])
            results.append(RecipientResult(address, "delivered", 250, "250 2.0.0 delivered",
                                           "local"))
        except QuotaExceeded:
            results.append(RecipientResult(address, "deferred", 452, "452 4.2.2 mailbox full",
                                           "local"))
        except (UnknownRecipient, MailboxInactive) as exc:
            results.append(RecipientResult(address, "bounced", 550, f"550 5.1.1 {exc}", "local"))
        except MailError as exc:
            results.append(RecipientResult(address, "bounced", 550, f"550 5.1.0 {exc}", "local"))
    return results


def retry_delay(attempts: int) -> int:
    """Seconds before the next try after ``attempts`` failed tries."""
    schedule = settings.CORREIO_OUTBOUND_RETRY_SCHEDULE
    return schedule[min(max(attempts, 1), len(schedule)) - 1]


def _record_batch(
    outcomes: Sequence[tuple[OutboundMessage, list[OutboundRecipient], list[RecipientResult]]],
    blobs: dict[str, bytes],
    token: str,
    report: RunReport,
    route: str,
    last_route: dict[int, str],
    held: set[int],
) -> set[int]:
    """Store one destination's results, queue the DSNs they call for, renew the lease of the
    messages still held and release those this destination completes, all in ONE
    transaction; the ids no longer held. A message whose lock another worker owns now (its
    lease ran out) keeps nothing of this pass: that worker delivers it."""
    now = timezone.now()
    lease = timedelta(seconds=settings.CORREIO_OUTBOUND_LOCK_SECONDS)
    delay_warning = settings.CORREIO_OUTBOUND_DELAY_WARNING
    ids = sorted(held)
    with transaction.atomic():
        renewed = OutboundMessage.objects.filter(pk__in=ids, lock_token=token).update(
            locked_until=now + lease
        )
        lost: set[int] = set()
        if renewed != len(ids):
            lost = set(ids) - set(
                OutboundMessage.objects.filter(pk__in=ids, lock_token=token)
                .values_list("pk", flat=True)
            )
            logger.warning("lost the lock of outbound %s; dropping their results", sorted(lost))
        # Recipients settled meanwhile (the admin's "bounce now") are left as they are.
        pending = set(
            OutboundRecipient.objects.select_for_update()
            .filter(pk__in=[r.pk for _, recipients, _ in outcomes for r in recipients],
                    state__in=PENDING_STATES)
            .values_list("pk", flat=True)
        )
        updates: dict[tuple, list[int]] = defaultdict(list)
        history: list[DeliveryAttempt] = []
        for message, recipients, results in outcomes:
            if message.pk in lost:
                continue
            by_address = {r.address: r for r in recipients}
            failed: list[DsnRecipient] = []
            delayed: list[DsnRecipient] = []
            for result in results:
                recipient = by_address.get(result.address)
                if recipient is None or recipient.pk not in pending:
                    continue
                changes = {
                    "last_attempt": now,
                    "last_reply": result.reply[:2000],
                    "last_host": result.host[:300],
                }
                outcome = result.outcome
                if outcome == "delivered":
                    state = RecipientState.DELIVERED
                elif outcome == "bounced":
                    state = RecipientState.BOUNCED
                    failed.append(_dsn_entry(result, "failed", "5.0.0", now))
                elif now >= message.expires:
                    state = RecipientState.EXPIRED
                    entry = _dsn_entry(result, "failed", "4.4.7", now)
                    # RFC 3463 §3.5: 4.4.7, delivery time expired; the last reply diagnoses.
                    entry.status = "4.4.7"
                    failed.append(entry)
                else:
                    state = RecipientState.DEFERRED
                    changes["next_attempt"] = min(
                        now + timedelta(seconds=retry_delay(recipient.attempts + 1)),
                        message.expires,
                    )
                    recipient.next_attempt = changes["next_attempt"]
                    if (
                        delay_warning
                        and not recipient.delay_notified
                        and now - message.created >= timedelta(seconds=delay_warning)
                    ):
                        changes["delay_notified"] = True
                        entry = _dsn_entry(result, "delayed", "4.0.0", now)
                        entry.will_retry_until = message.expires
                        delayed.append(entry)
                changes["state"] = state
                # Recipients with the same changes (typically every 250) share one UPDATE.
                updates[tuple(sorted(changes.items()))].append(recipient.pk)
                recipient.state = state
                recipient.attempts += 1
                history.append(DeliveryAttempt(
                    recipient_id=recipient.pk,
                    at=now,
                    host=result.host[:300],
                    code=result.code,
                    reply=result.reply[:2000],
                    outcome=state,
                ))
                setattr(report, str(state), getattr(report, str(state)) + 1)
            if failed or delayed:
                raw = bytes(blobs[message.blob_id])
                if failed:
                    send_dsn(message, raw, failed)
                if delayed:
                    send_dsn(message, raw, delayed)
        for changes, pks in updates.items():
            OutboundRecipient.objects.filter(pk__in=pks).update(
                attempts=F("attempts") + 1, **dict(changes)
            )
        DeliveryAttempt.objects.bulk_create(history)
        done = [m.pk for m, _, _ in outcomes
                if last_route.get(m.pk) == route and m.pk not in lost]
        if done:
            waiting = set(
                OutboundRecipient.objects.filter(message_id__in=done, state__in=PENDING_STATES)
                .values_list("message_id", flat=True)
            )
            for finished, subset in ((True, [pk for pk in done if pk not in waiting]),
                                     (False, [pk for pk in done if pk in waiting])):
                if subset:
                    OutboundMessage.objects.filter(pk__in=subset, lock_token=token).update(
                        lock_token="", locked_until=None, finished=finished
                    )
    return lost | set(done)


def _dsn_entry(result: RecipientResult, action: str, default: str, now) -> DsnRecipient:
    return DsnRecipient(
        address=result.address,
        action=action,
        status=status_from_reply(result.code, result.reply, default),
        remote_mta=result.host.split("[")[0] if result.host and result.host != "local" else "",
        diagnostic=result.reply,
        last_attempt=now,
    )


def send_dsn(message: OutboundMessage, raw: bytes, recipients: list[DsnRecipient]) -> None:
    """Queue a DSN about ``recipients`` to the message's envelope sender, from ``<>``. Never
    for a message whose sender is ``<>`` (RFC 5321 §4.5.5): that would loop."""
    if not message.mail_from:
        logger.info("not bouncing outbound %s: its sender is <>", message.pk)
        return
    dsn = build_dsn(
        reporting_mta=settings.CORREIO_HOSTNAME,
        sender=message.mail_from,
        original=raw,
        arrival=message.created,
        recipients=recipients,
        now=timezone.now(),
    )
    try:
        enqueue_outbound(dsn, "", [message.mail_from], enforce_quota=False)
    except MailError as exc:
        # The sender's local mailbox is gone: there is nobody to tell.
        logger.warning("DSN for outbound %s to %s dropped: %s", message.pk, message.mail_from,
                       exc)

