"""A real DNS server for tests: Debian's dnsmasq on a loopback port, authoritative-only for the
zones the test hands it (TXT for SPF, DKIM and DMARC; MX and A), forwarding nothing.

``tests/install-deps.sh`` installs dnsmasq-base when missing."""

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field

import dns.message
import dns.query


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _txt_arg(name: str, text: str) -> str:
    # dnsmasq: one record of several <=255-octet strings (RFC 1035 §3.3.14), comma-separated;
    # no shell, so no quotes (test records hold no commas).
    assert "," not in text, text
    chunks = [text[i:i + 255] for i in range(0, len(text), 255)] or [""]
    return f"--txt-record={name}," + ",".join(chunks)


@dataclass
class Zone:
    txt: list[tuple[str, str]] = field(default_factory=list)
    mx: list[tuple[str, str, int]] = field(default_factory=list)
    a: list[tuple[str, str]] = field(default_factory=list)

    def arguments(self) -> list[str]:
        args = [_txt_arg(name, text) for name, text in self.txt]
        args += [f"--mx-host={domain},{host},{pref}" for domain, host, pref in self.mx]
        args += [f"--host-record={name},{ip}" for name, ip in self.a]
        return args


class DnsServer:
    def __init__(self, zone: Zone, local_suffixes=("test",), ttl: int = 0):
        # The port is free for UDP when picked; TCP (or a race) may still refuse it: retry.
        for attempt in range(5):
            try:
                self._start(zone, local_suffixes, ttl)
                return
            except RuntimeError:
                if attempt == 4:
                    raise

    def _start(self, zone: Zone, local_suffixes, ttl: int) -> None:
        self.port = free_udp_port()
        binary = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
        command = [
            binary, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
            "--no-hosts", "--no-poll", "--bind-interfaces", "--listen-address=127.0.0.1",
            f"--port={self.port}", "--user=root", "--pid-file=", "--cache-size=0", f"--local-ttl={ttl}",
            f"--neg-ttl={ttl}",
            *[f"--local=/{suffix}/" for suffix in local_suffixes], *zone.arguments(),
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        self._wait_ready()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dnsmasq exited: {self.process.stderr.read().decode()}")
            try:
                dns.query.udp(dns.message.make_query("ready.test", "A"), "127.0.0.1",
                              port=self.port, timeout=0.2)
                return
            except (dns.exception.Timeout, OSError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("dnsmasq did not answer")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


class SilentResolver:
    """A UDP and TCP port on loopback that takes DNS queries and never answers."""

    def __init__(self):
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.udp.close()
