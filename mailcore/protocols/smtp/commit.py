"""Group commit for the SMTP listeners: messages that finish DATA at about the same time are
committed in ONE database transaction, and each client gets its 250 only after that commit
(ARCHITECTURE.md, "No loss"). The MX stores into INBOXes (``intake_committer``), submission
queues for relay (``submission_committer``): the same batching, another service call.

A durable commit costs a disk flush; sharing it among the messages of several concurrent
connections is what lets intake beat one-flush-per-message. If a batch fails as a whole (a
database error, a quota the batch would overrun), its messages are retried one by one, so one
bad message (an over-quota mailbox, a storage error) cannot fail the others. Only one batch is
in flight at a time: SQLite serialises writers anyway, and while a batch commits the next one
fills up."""

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mailcore import metrics
from mailcore.protocols.common.services import call_service
from mailcore.services import submission
from mailcore.services.quarantine import deliver_recorded


@dataclass
class _Pending:
    item: Any
    future: asyncio.Future


class BatchCommitter:
    """Runs ``commit_many(items)`` (a synchronous service, one transaction, returning one result
    per item in order) on the batches of items submitted together. A result that is an
    exception (a service reporting one item refused, as ``submit_many`` does) is raised to that
    item's waiter alone."""

    def __init__(
        self,
        commit_many: Callable[[list], Sequence[Any]],
        *,
        window: float = 0.002,
        max_batch: int = 64,
        path: str = "intake",
    ):
        self.commit_many = commit_many
        self.path = path  # the label of correio_deliveries these commits count under
        self.window = window
        self.max_batch = max_batch
        self._pending: list[_Pending] = []
        self._task: asyncio.Task | None = None
        # Figures for benchmarks and tests: batches committed and messages in them.
        self.batches = 0
        self.messages = 0

    async def submit(self, item):
        """Queue ``item`` for the next batch; return its result once committed, or raise what
        the service raised (or returned) for this item alone."""
        loop = asyncio.get_running_loop()
        pending = _Pending(item, loop.create_future())
        self._pending.append(pending)
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run())
        # The waiter may be cancelled (client gone); the batch it joined still completes.
        return await pending.future

    async def _run(self) -> None:
        # From idle, wait a moment so that messages finishing together share the commit; under
        # load, the next batch is whatever arrived while the previous one was committing.
        if self.window:
            await asyncio.sleep(self.window)
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            # A client that went away before its message was committed never got 250: skip it.
            batch = [entry for entry in batch if not entry.future.done()]
            if batch:
                await self._commit(batch)

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            results = await call_service(self.commit_many, [entry.item for entry in batch])
        except Exception as error:
            if len(batch) == 1:
                _settle(batch[0], error)
                return
            for entry in batch:
                try:
                    (result,) = await call_service(self.commit_many, [entry.item])
                except Exception as item_error:
                    _settle(entry, item_error)
                else:
                    self._count(1)
                    _settle(entry, result)
            return
        self._count(len(batch))
        for entry, result in zip(batch, results, strict=True):
            _settle(entry, result)

    def _count(self, messages: int) -> None:
        metrics.DELIVERIES.labels(self.path).inc(messages)
        self.batches += 1
        self.messages += messages


def _settle(entry: _Pending, result) -> None:
    if entry.future.done():
        return
    if isinstance(result, BaseException):
        entry.future.set_exception(result)
    else:
        entry.future.set_result(result)


def intake_committer(*, window: float = 0.002, max_batch: int = 64) -> BatchCommitter:
    """The MX's: items are ``(raw, mailbox_ids, record)``, stored in each mailbox's INBOX with
    the inbound verdict ``record`` (None: none to keep); results are lists of ``Delivered``."""
    return BatchCommitter(deliver_recorded, window=window, max_batch=max_batch)


def submission_committer(*, window: float = 0.002, max_batch: int = 64) -> BatchCommitter:
    """Submission's: items are ``submission.Submission``, queued in one transaction with one
    delivery task for all; results are ``EnqueueResult``."""
    return BatchCommitter(submission.submit_many, window=window, max_batch=max_batch,
                          path="submission")
