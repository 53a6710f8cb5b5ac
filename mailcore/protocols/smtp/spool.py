"""Where DATA goes while it is being received: memory up to a threshold, then a temporary file.

An MX may have a thousand connections each sending a message of up to the size limit (25 MiB by
default), slowly; kept in memory that is gigabytes (issue 12). Past ``threshold`` octets the
message is written to an anonymous temporary file (unlinked at creation, so nothing is left
behind by a crash), and read back in a worker thread only once the message is complete and about
to be delivered. Writes of a few kilobytes to a local temporary file land in the page cache;
they do not block the loop for long (the loop-lag watchdog would show it if they did)."""

import asyncio
import tempfile
import weakref


class DataSpool:
    def __init__(self, threshold: int, directory: str | None = None):
        self.threshold = threshold
        self.directory = directory
        self.size = 0
        self._chunks: list[bytes] = []
        self._file = None

    @property
    def on_disk(self) -> bool:
        return self._file is not None

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self._file is None:
            self._chunks.append(chunk)
            if self.size <= self.threshold:
                return
            self._file = tempfile.TemporaryFile(dir=self.directory, prefix="correio-data-")
            self._file.writelines(self._chunks)
            self._chunks.clear()
            return
        self._file.write(chunk)

    def discard(self) -> None:
        """Forget what was written (the message is refused); later writes start afresh."""
        self.close()
        self.size = 0

    def _read_file(self) -> bytes:
        self._file.seek(0)
        return self._file.read()

    async def read_all(self) -> bytes:
        """The whole message; read from disk in a thread when it was spooled."""
        if self._file is None:
            return b"".join(self._chunks)
        return await asyncio.to_thread(self._read_file)

    def close(self) -> None:
        self._chunks.clear()
        if self._file is not None:
            self._file.close()
            self._file = None


class DeliveryBudget:
    """Octets of spooled messages being delivered at once, per event loop (issue 12).

    A spooled message is read back into memory to be delivered, and delivery holds a few
    copies of it (the trace headers prepended, the parsed structure); ten 5 MiB messages
    finishing together grew the process by 170 MB. Past ``limit`` octets in delivery the next
    message waits for its turn (its client waits for the 250, as RFC 5321 §4.5.3.2.6 allows
    for ten minutes); one message is always let through, whatever its size. Messages below the
    spool threshold, already in memory, do not count."""

    def __init__(self, limit: int):
        self.limit = limit
        self.in_use = 0
        self._waiters: list[asyncio.Future] = []

    async def acquire(self, size: int) -> None:
        loop = asyncio.get_running_loop()
        while self.in_use and self.in_use + size > self.limit:
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self.in_use += size

    def release(self, size: int) -> None:
        self.in_use -= size
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


_budgets: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, DeliveryBudget]" = (
    weakref.WeakKeyDictionary()
)


def delivery_budget(limit: int) -> DeliveryBudget:
    """The running loop's budget, shared by the MX and submission listeners of the process."""
    loop = asyncio.get_running_loop()
    budget = _budgets.get(loop)
    if budget is None:
        budget = _budgets[loop] = DeliveryBudget(limit)
    return budget
