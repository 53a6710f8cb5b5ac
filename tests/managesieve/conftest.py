"""A ManageSieve listener in-process on a loopback port 0, with a trustme certificate for
STARTTLS, and a raw-socket client for exact transcripts."""

import socket
from dataclasses import replace

import pytest
import trustme

from mailcore.protocols.common.config import ListenerConfig
from mailcore.protocols.managesieve.server import ManageSieveOptions, start_servers
from mailcore.services import credentials
from tests.listeners import run_listener


@pytest.fixture(scope="session")
def sieve_tls(tmp_path_factory):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost", common_name="127.0.0.1")
    folder = tmp_path_factory.mktemp("managesieve-tls")
    cert_path, key_path, ca_path = folder / "cert.pem", folder / "key.pem", folder / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    ca.cert_pem.write_to_path(str(ca_path))
    return cert_path, key_path, ca_path


@pytest.fixture
def start_managesieve(sieve_tls):
    started = []

    def start(**options):
        cert, key, _ca = sieve_tls
        config = ListenerConfig(tls_cert=str(cert), tls_key=str(key),
                                managesieve_addr=("127.0.0.1", 0),
                                extra={"managesieve": replace(ManageSieveOptions(), **options)})
        context = run_listener(lambda: start_servers(config))
        listener = context.__enter__()
        started.append(context)
        return listener

    credentials.forget()
    yield start
    for context in reversed(started):
        context.__exit__(None, None, None)
    credentials.forget()


class Raw:
    """Speaks bytes to the listener and reads replies up to the final OK/NO/BYE line."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_reply(self) -> bytes:
        while True:
            for line in self.buffer.split(b"\r\n")[:-1]:
                if line.startswith((b"OK", b"NO", b"BYE")):
                    end = self.buffer.index(line) + len(line) + 2
                    reply, self.buffer = self.buffer[:end], self.buffer[end:]
                    return reply
            chunk = self.sock.recv(65536)
            if not chunk:
                reply, self.buffer = self.buffer, b""
                return reply
            self.buffer += chunk

    def command(self, data: bytes) -> bytes:
        self.send(data)
        return self.read_reply()

    def close(self) -> None:
        self.sock.close()
