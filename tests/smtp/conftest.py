"""Fixtures for SMTP listener tests: an MX listener in-process on 127.0.0.1 port 0, local
recipients made through the services, and a raw-socket client for exact transcripts."""

import contextlib
import socket
import ssl
import subprocess

import pytest

from mailcore.blobstore import load_blob
from mailcore.models import Alias, Message
from mailcore.protocols.common.config import ListenerConfig
from mailcore.protocols.smtp.server import start_servers
from tests.listeners import run_listener

HOSTNAME = "mail.example.test"


@pytest.fixture
def start_smtp():
    """``start_smtp(limits=SMTPLimits(...), **ListenerConfig fields)`` starts an MX listener."""
    stack = contextlib.ExitStack()

    def start(*, limits=None, committer=None, **overrides):
        extra = {}
        if limits is not None:
            extra["smtp_limits"] = limits
        if committer is not None:
            extra["smtp_committer"] = committer
        overrides.setdefault("hostname", HOSTNAME)
        config = ListenerConfig(smtp_addr=("127.0.0.1", 0), extra=extra, **overrides)
        return stack.enter_context(run_listener(lambda: start_servers(config)))

    with stack:
        yield start


@pytest.fixture
def local(make_mailbox):
    """The domain example.test with demo@ and alice@ mailboxes."""
    return {
        "demo": make_mailbox("demo@example.test"),
        "alice": make_mailbox("alice@example.test"),
    }


@pytest.fixture
def port(start_smtp, local) -> int:
    return start_smtp().port


def make_alias(local_part: str, destinations: str, domain_name: str = "example.test") -> Alias:
    from mailcore.models import Domain

    return Alias.objects.create(
        domain=Domain.objects.get(name=domain_name),
        local_part=local_part,
        destinations=destinations,
    )


def stored(address: str) -> list[bytes]:
    """The raw bytes of every message in the INBOX of ``address``, by UID."""
    rows = Message.objects.filter(mailbox__address=address, folder__role="inbox").order_by("uid")
    return [load_blob(row.blob_id) for row in rows]


def body_of(raw: bytes) -> bytes:
    """What the client sent: the stored bytes after our Return-Path and Received fields."""
    assert raw.startswith(b"Return-Path: <")
    received = raw.index(b"\r\nReceived: ") + 2
    # Our Received field is folded with tabs and ends at the first line not starting with one.
    end = received
    while True:
        end = raw.index(b"\r\n", end) + 2
        if raw[end : end + 1] != b"\t":
            return raw[end:]


class Wire:
    """A raw SMTP client: send exact bytes, read whole (multi-line) replies."""

    def __init__(self, port: int, timeout: float = 10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.file = self.sock.makefile("rb")

    def reply(self) -> str:
        lines = []
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("closed by server: " + " | ".join(lines))
            lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))
            if line[3:4] != b"-":
                return "\n".join(lines)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def cmd(self, line: str | bytes) -> str:
        self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return self.reply()

    def closed(self, timeout: float = 5) -> bool:
        """True when the server closed the connection (EOF) within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            return self.file.read() is not None
        except (ConnectionError, TimeoutError, OSError):
            return False

    def starttls(self, context: ssl.SSLContext, hostname: str = HOSTNAME) -> None:
        self.sock = context.wrap_socket(self.sock, server_hostname=hostname)
        self.file = self.sock.makefile("rb")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


@pytest.fixture
def wire(port):
    """A raw client connected to the listener, greeting read, after EHLO."""
    client = Wire(port)
    assert client.reply().startswith("220 ")
    assert client.cmd("EHLO client.remote.test").startswith("250-")
    yield client
    client.close()


def swaks(port: int, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{port}", "--helo", "client.remote.test", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
