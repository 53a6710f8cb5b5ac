"""Where DATA goes while it is being received: memory up to a threshold, then a temporary file.

An MX may have a thousand connections each sending a message of up to the size limit (25 MiB by
default), slowly; kept in memory that is gigabytes (issue 12). Past ``threshold`` octets the
message is written to an anonymous temporary file (unlinked at creation, so nothing is left
behind by a crash), and read back in a worker thread only once the message is complete and about
to be delivered. Writes of a few kilobytes to a local temporary file land in the page cache;
they do not block the loop for long (the loop-lag watchdog would show it if they did)."""

import asyncio
import tempfile


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
