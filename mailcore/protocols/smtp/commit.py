"""Group commit for SMTP intake: messages that finish DATA at about the same time are stored in
ONE database transaction, and each client gets its 250 only after that commit.

A durable commit costs a disk flush; sharing it among the messages of several concurrent
connections is what lets intake beat one-flush-per-message. If a batch fails, its messages are
retried one by one, so one bad message (an over-quota mailbox, a storage error) cannot fail the
others. Only one batch is in flight at a time: SQLite serialises writers anyway, and while a
batch commits the next one fills up."""

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mailcore import metrics
from mailcore.protocols.common.services import call_service
from mailcore.services.delivery import Delivered
from mailcore.services.intake import deliver_many


@dataclass
class _Pending:
    raw: bytes
    mailbox_ids: tuple[int, ...]
    future: asyncio.Future


class GroupCommitter:
    def __init__(
        self,
        *,
        window: float = 0.002,
        max_batch: int = 64,
        deliver: Callable[..., list[list[Delivered]]] = deliver_many,
    ):
        self.window = window
        self.max_batch = max_batch
        self._deliver = deliver
        self._pending: list[_Pending] = []
        self._task: asyncio.Task | None = None
        # Figures for benchmarks and tests: batches committed and messages in them.
        self.batches = 0
        self.messages = 0

    async def deliver(self, raw: bytes, mailbox_ids: Sequence[int]) -> list[Delivered]:
        """Store ``raw`` in the INBOX of each mailbox; return when it is committed.

        Raises what the delivery service raises for this message alone."""
        loop = asyncio.get_running_loop()
        pending = _Pending(raw, tuple(mailbox_ids), loop.create_future())
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
            # A client that went away before its message was stored never got 250: skip it.
            batch = [item for item in batch if not item.future.done()]
            if batch:
                await self._commit(batch)

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            results = await call_service(
                self._deliver, [(item.raw, item.mailbox_ids) for item in batch]
            )
        except Exception as error:
            if len(batch) == 1:
                _settle(batch[0], error=error)
                return
            for item in batch:
                try:
                    (result,) = await call_service(self._deliver, [(item.raw, item.mailbox_ids)])
                except Exception as item_error:
                    _settle(item, error=item_error)
                else:
                    self._count(1)
                    _settle(item, result=result)
            return
        self._count(len(batch))
        for item, result in zip(batch, results, strict=True):
            _settle(item, result=result)

    def _count(self, messages: int) -> None:
        metrics.DELIVERIES.labels("intake").inc(messages)
        self.batches += 1
        self.messages += messages


def _settle(item: _Pending, *, result=None, error: BaseException | None = None) -> None:
    if item.future.done():
        return
    if error is not None:
        item.future.set_exception(error)
    else:
        item.future.set_result(result)
