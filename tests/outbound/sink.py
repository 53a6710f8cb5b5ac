"""Stand-ins for remote mail servers on loopback: real aiosmtpd SMTP servers that record what
they receive and answer as told (scripted replies, hangs, missing extensions), a raw server that
records the exact bytes on the wire, a server that never greets, and a tiny DNS server.

They run in a thread with their own event loop (tests/listeners.run_listener)."""

import asyncio
import socket
import ssl
import threading
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
from aiosmtpd.smtp import SMTP

from tests.listeners import serve_in_thread as _serve_in_thread


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    mail_options: list[str]
    peer_tls: bool
    login: bytes | None = None


@dataclass
class Behaviour:
    """How the far side answers. Lists of replies are consumed one per transaction; ``None``
    (or an exhausted list) means "accept"."""

    rcpt_replies: dict[str, list[str | None]] = field(default_factory=dict)
    data_replies: list[str | None] = field(default_factory=list)
    hang_data: float = 0.0  # seconds to wait before answering the final dot
    hang_data_times: int = 10**9  # how many transactions hang
    drop_extensions: tuple[str, ...] = ()  # e.g. ("8BITMIME", "SMTPUTF8", "STARTTLS")
    add_extensions: tuple[str, ...] = ()  # e.g. ("PIPELINING",)
    idle_timeout: float = 300.0  # the server closes idle sessions with 421 after this


class RecordingHandler:
    def __init__(self, behaviour: Behaviour | None = None):
        self.behaviour = behaviour or Behaviour()
        self.received: list[Received] = []
        self.transactions = 0
        self.sessions = 0
        self.lock = threading.Lock()
        self.event = threading.Event()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        self.sessions += 1
        drop = tuple(x.upper() for x in self.behaviour.drop_extensions)
        kept = [r for r in responses if not r[4:].upper().startswith(drop)] if drop else responses
        return kept[:-1] + [f"250-{x}" for x in self.behaviour.add_extensions] + kept[-1:]

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        replies = self.behaviour.rcpt_replies.get(address.lower())
        if replies:
            reply = replies.pop(0)
            if reply is not None:
                return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.transactions += 1
            number = self.transactions
        behaviour = self.behaviour
        if behaviour.hang_data and number <= behaviour.hang_data_times:
            # Cancelled when the client goes away: nothing is recorded, as a real server that
            # never answered the final dot has not taken the message.
            await asyncio.sleep(behaviour.hang_data)
        if behaviour.data_replies:
            reply = behaviour.data_replies.pop(0)
            if reply is not None:
                return reply
        with self.lock:
            self.received.append(
                Received(
                    mail_from=envelope.mail_from,
                    rcpt_tos=list(envelope.rcpt_tos),
                    data=envelope.original_content,
                    mail_options=list(envelope.mail_options),
                    peer_tls=session.ssl is not None,
                    login=session.auth_data if session.authenticated else None,
                )
            )
        self.event.set()
        return "250 2.0.0 queued"

    def messages_for(self, address: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if address in r.rcpt_tos]


def smtp_factory(handler, tls_context: ssl.SSLContext | None = None, hostname="mx.remote.test",
                 authenticator=None):
    def make():
        return SMTP(
            handler,
            hostname=hostname,
            decode_data=False,
            enable_SMTPUTF8="SMTPUTF8" not in handler.behaviour.drop_extensions,
            tls_context=tls_context,
            require_starttls=False,
            data_size_limit=50 * 1024 * 1024,
            authenticator=authenticator,
            auth_require_tls=False,
            timeout=handler.behaviour.idle_timeout,
        )

    return make


async def start_sink(handler, host="127.0.0.1", port=0, tls_context=None, authenticator=None):
    loop = asyncio.get_running_loop()
    factory = smtp_factory(handler, tls_context, authenticator=authenticator)
    server = await loop.create_server(factory, host, port)
    return [server]


class RawRecorder:
    """The least SMTP server there is: accepts everything and records DATA byte for byte
    (dot-stuffing and line ends as they were on the wire)."""

    def __init__(self):
        self.payloads: list[bytes] = []
        self.mail_lines: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        writer.write(b"220 raw.remote.test ESMTP\r\n")
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                verb = line[:4].upper()
                if verb == b"EHLO":
                    writer.write(b"250-raw.remote.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
                elif verb == b"MAIL":
                    self.mail_lines.append(line)
                    writer.write(b"250 OK\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go on\r\n")
                    await writer.drain()
                    payload = await reader.readuntil(b"\r\n.\r\n")
                    self.payloads.append(payload)
                    writer.write(b"250 OK\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    return
                else:
                    writer.write(b"250 OK\r\n")
                await writer.drain()
        finally:
            writer.close()


async def start_raw(recorder: RawRecorder, host="127.0.0.1", port=0):
    return [await asyncio.start_server(recorder.handle, host, port)]


async def start_silent(host="127.0.0.1", port=0):
    """A server that accepts connections and never says a word."""

    async def handle(reader, writer):
        try:
            await reader.read()
        finally:
            writer.close()

    return [await asyncio.start_server(handle, host, port)]


class DnsServer:
    """Answers queries from a dict ``{(name, type): [rdata text]}`` over UDP: NXDOMAIN for
    unknown names, an empty answer for a known name without that type."""

    def __init__(self, zone: dict[tuple[str, str], list[str]]):
        self.zone = {(n.lower().rstrip("."), t.upper()): v for (n, t), v in zone.items()}
        self.names = {n for n, _ in self.zone}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.running = True
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while self.running:
            try:
                data, peer = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            question = query.question[0]
            name = question.name.to_text().rstrip(".").lower()
            rdtype = dns.rdatatype.to_text(question.rdtype)
            if name not in self.names:
                response.set_rcode(dns.rcode.NXDOMAIN)
            else:
                values = self.zone.get((name, rdtype), [])
                if values:
                    response.answer.append(
                        dns.rrset.from_text(question.name, 60, "IN", rdtype, *values)
                    )
            self.sock.sendto(response.to_wire(), peer)

    def close(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()


def serve_in_thread(start):
    """A remote MX stand-in on a loop of its own (no database connection involved)."""
    return _serve_in_thread(start, name="remote-mx")
