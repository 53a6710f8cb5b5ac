"""COMPRESS=DEFLATE (RFC 4978): after ``COMPRESS DEFLATE`` both directions are raw deflate
streams (RFC 1951, no zlib header), the server flushing at the end of each of its writes so the
client can decode every response at once (§4).

The reading side inflates on demand, at most :data:`CHUNK` octets at a time, and only when the
connection asks for more data than is buffered: a compression bomb (a few KiB that inflate to
gigabytes) never occupies more than a line or a literal within the session's limits plus one
chunk, whatever its ratio. Line length limits keep working as with the plain stream
(``LimitOverrunError``)."""

from __future__ import annotations

import asyncio
import zlib

CHUNK = 64 * 1024


class InflatingReader:
    """The subset of ``asyncio.StreamReader`` the IMAP connection uses, over a deflated
    stream."""

    def __init__(self, raw: asyncio.StreamReader, limit: int):
        self._raw = raw
        self._limit = limit
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self._buffer = bytearray()
        self._eof = False

    async def _fill(self) -> None:
        """Add at most CHUNK inflated octets to the buffer; set EOF when the peer is done."""
        while True:
            inflater = self._inflater
            if inflater.unconsumed_tail:
                data = inflater.unconsumed_tail
            else:
                if inflater.eof:
                    self._eof = True
                    return
                data = await self._raw.read(CHUNK)
                if not data:
                    self._eof = True
                    return
            try:
                out = inflater.decompress(data, CHUNK)
            except zlib.error:
                # Not deflate data: the stream cannot be read any further.
                self._eof = True
                return
            if out:
                self._buffer += out
                return

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        while True:
            index = self._buffer.find(separator)
            if index >= 0:
                end = index + len(separator)
                if end > self._limit:
                    raise asyncio.LimitOverrunError("line too long", end)
                data = bytes(self._buffer[:end])
                del self._buffer[:end]
                return data
            if len(self._buffer) > self._limit:
                raise asyncio.LimitOverrunError("line too long", len(self._buffer))
            if self._eof:
                partial = bytes(self._buffer)
                self._buffer.clear()
                raise asyncio.IncompleteReadError(partial, None)
            await self._fill()

    async def readexactly(self, n: int) -> bytes:
        while len(self._buffer) < n:
            if self._eof:
                partial = bytes(self._buffer)
                self._buffer.clear()
                raise asyncio.IncompleteReadError(partial, n)
            await self._fill()
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    async def read(self, n: int = -1) -> bytes:
        if not self._buffer and not self._eof:
            await self._fill()
        if n < 0:
            n = len(self._buffer)
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def at_eof(self) -> bool:
        return self._eof and not self._buffer


class DeflatingWriter:
    """Wraps an ``asyncio.StreamWriter``: each write is compressed and sync-flushed (RFC 4978
    §4), everything else is the wrapped writer's."""

    def __init__(self, raw: asyncio.StreamWriter):
        self._raw = raw
        self._deflater = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)

    def write(self, data) -> None:
        deflater = self._deflater
        self._raw.write(deflater.compress(data) + deflater.flush(zlib.Z_SYNC_FLUSH))

    def __getattr__(self, name):
        return getattr(self._raw, name)
