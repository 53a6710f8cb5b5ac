"""A raw-socket POP3 client for transcripts where exact bytes matter."""

import socket


class RawClient:
    def __init__(self, port: int, timeout: float = 10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_until(self, terminator: bytes) -> bytes:
        while terminator not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed; got {self.buffer!r}")
            self.buffer += chunk
        end = self.buffer.index(terminator) + len(terminator)
        data, self.buffer = self.buffer[:end], self.buffer[end:]
        return data

    def line(self) -> bytes:
        return self.read_until(b"\r\n")

    def command(self, line: bytes) -> bytes:
        self.send(line + b"\r\n")
        return self.line()

    def multiline(self) -> bytes:
        """The rest of a multi-line reply after its status line, terminator included."""
        data = b""
        while True:
            line = self.line()
            data += line
            if line == b".\r\n":
                return data

    def closed(self) -> bool:
        """True when the server has closed the connection (after any pending bytes)."""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return True
            if not chunk:
                return True
            self.buffer += chunk

    def close(self) -> None:
        self.sock.close()
