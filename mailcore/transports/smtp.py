"""SMTP relay: direct delivery by MX lookup, or through a smarthost.

- Routing (RFC 5321 §5.1): MX records in preference order (equal preferences shuffled), several
  hosts tried; no MX means the domain's own A/AAAA ("implicit MX"); a null MX (RFC 7505 §3) or
  a domain that does not exist bounces; DNS trouble defers. ``CORREIO_MX_OVERRIDES`` routes
  chosen domains to fixed ``host:port`` lists and ``CORREIO_DNS_NAMESERVERS`` picks the
  resolver (tests point both at loopback servers); ``CORREIO_SMARTHOST`` sends everything to one
  relay, with AUTH (RFC 4954) when ``CORREIO_SMARTHOST_USER`` is set.
- Opportunistic STARTTLS (RFC 3207): used when offered, without certificate checks as for any
  MX today; a failed handshake is retried in plain text on a new connection (Postfix "may").
- 8BITMIME (RFC 6152): BODY=8BITMIME when offered, else the body is downgraded to 7 bit.
  SMTPUTF8 (RFC 6531): required for non-ASCII addresses or headers; a server without it bounces
  the recipients (5.6.7, RFC 6531 §3.2 / RFC 6533).
- Timeouts per RFC 5321 §4.5.3.2 for each wait, never beyond the attempt's deadline.
- Replies: 2xx delivered, 4xx and every network failure deferred, 5xx bounced (RFC 5321 §4.2.1).
  Connection-level failures (no connection, greeting or EHLO refused) move on to the next host.
"""

import logging
import random
import smtplib
import socket
import ssl
import threading
import time
from dataclasses import dataclass

import dns.exception
import dns.nameserver
import dns.resolver
from django.conf import settings

from mailcore.mime.wire import data_payload
from mailcore.transports.base import Outgoing, RecipientResult, Transport

logger = logging.getLogger("correio.relay")

MAX_HOSTS = 10  # addresses tried per destination and attempt
DATA_CHUNK = 64 * 1024  # one "data block" of RFC 5321 §4.5.3.2.5
QUIT_TIMEOUT = 5.0
# Sessions kept open for the next message to the same host (Postfix: 2 s, 100 uses).
CACHE_IDLE = 2.0
CACHE_MAX_USES = 100
CACHE_MAX_HOSTS = 20
DNS_LIFETIME = 20.0


@dataclass(frozen=True)
class Timeouts:
    connect: float = 30
    command: float = 300  # greeting, EHLO, STARTTLS, AUTH, MAIL, RCPT (§4.5.3.2.1-3)
    data_init: float = 120  # DATA → 354 (§4.5.3.2.4)
    data_block: float = 180  # each block of data sent (§4.5.3.2.5)
    data_term: float = 600  # final "." → reply (§4.5.3.2.6)


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    port: int

    @property
    def label(self) -> str:
        if self.name == self.address:
            return f"[{self.address}]:{self.port}"
        return f"{self.name}[{self.address}]:{self.port}"


class RouteFailure(Exception):
    """No host to try: ``outcome`` is "bounced" or "deferred"."""

    def __init__(self, outcome: str, reply: str):
        super().__init__(reply)
        self.outcome = outcome
        self.reply = reply


class _Stale(Exception):
    """A cached session turned out closed before anything was sent on it."""


class _HostFailed(Exception):
    """This host could not take the mail at connection level; the next may."""

    def __init__(self, reply: str, code: int | None = None):
        super().__init__(reply)
        self.reply = reply
        self.code = code


def _parse_hostport(value: str, default_port: int) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if sep and port.isdigit() and not host.endswith(":"):
        return host.strip("[]"), int(port)
    return value.strip("[]"), default_port


def _is_loopback(address: str) -> bool:
    return address.startswith("127.") or address in ("::1", "localhost")


def _reply_text(code: int, message: bytes | str) -> str:
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return f"{code} {' '.join(message.split())}"


def _failure(code: int) -> str:
    """A refusal: 5xx bounces, anything else defers."""
    return "bounced" if 500 <= code < 600 else "deferred"


def _outcome(code: int) -> str:
    """2xx delivered, 5xx bounced, anything else (4xx, or a reply out of place) deferred."""
    if 200 <= code < 300:
        return "delivered"
    if 500 <= code < 600:
        return "bounced"
    return "deferred"


class SMTPTransport(Transport):
    def __init__(
        self,
        *,
        helo: str,
        port: int = 25,
        smarthost: str = "",
        smarthost_user: str = "",
        smarthost_password: str = "",
        overrides: dict[str, list[tuple[str, int]]] | None = None,
        nameservers: list[str] | None = None,
        timeouts: Timeouts = Timeouts(),
    ):
        self.helo = helo
        self.port = port
        self.smarthost = _parse_hostport(smarthost, 25) if smarthost else None
        self.smarthost_user = smarthost_user
        self.smarthost_password = smarthost_password
        self.overrides = {k.lower(): v for k, v in (overrides or {}).items()}
        self.timeouts = timeouts
        self.resolver = dns.resolver.Resolver(configure=not nameservers)
        if nameservers:
            self.resolver.nameservers = [
                dns.nameserver.Do53Nameserver(*_parse_hostport(ns, 53)) for ns in nameservers
            ]
        self.resolver.lifetime = DNS_LIFETIME
        # Opportunistic TLS: encrypt when possible, authenticate nobody (RFC 7435).
        self.tls_context = ssl.create_default_context()
        self.tls_context.check_hostname = False
        self.tls_context.verify_mode = ssl.CERT_NONE
        self._cache: dict[tuple, tuple[smtplib.SMTP, float, int]] = {}
        self._cache_lock = threading.Lock()

    @classmethod
    def from_settings(cls) -> "SMTPTransport":
        return cls(
            helo=settings.CORREIO_HOSTNAME,
            port=settings.CORREIO_RELAY_PORT,
            smarthost=settings.CORREIO_SMARTHOST,
            smarthost_user=settings.CORREIO_SMARTHOST_USER,
            smarthost_password=settings.CORREIO_SMARTHOST_PASSWORD,
            overrides=settings.CORREIO_MX_OVERRIDES,
            nameservers=settings.CORREIO_DNS_NAMESERVERS,
            timeouts=Timeouts(
                connect=settings.CORREIO_RELAY_CONNECT_TIMEOUT,
                command=settings.CORREIO_RELAY_COMMAND_TIMEOUT,
                data_init=settings.CORREIO_RELAY_DATA_INIT_TIMEOUT,
                data_block=settings.CORREIO_RELAY_DATA_BLOCK_TIMEOUT,
                data_term=settings.CORREIO_RELAY_DATA_TERM_TIMEOUT,
            ),
        )

    # --- routing ---------------------------------------------------------------------------

    def route(self, domain: str) -> str:
        domain = domain.lower()
        if domain in self.overrides:
            return domain
        return "smarthost" if self.smarthost else domain

    def _addresses(self, name: str) -> list[str]:
        found = []
        for rdtype in ("A", "AAAA"):
            try:
                found.extend(r.address for r in self.resolver.resolve(name, rdtype))
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                continue
            except dns.exception.DNSException as exc:
                logger.info("address lookup of %s %s failed: %s", name, rdtype, exc)
        return found

    def hosts(self, domain: str) -> list[Host]:
        """The hosts to try for a domain, best first. Raises ``RouteFailure``."""
        domain = domain.lower().rstrip(".")
        if domain in self.overrides:
            return [Host(h, h, p) for h, p in self.overrides[domain]]
        if self.smarthost:
            host, port = self.smarthost
            return [Host(host, host, port)]
        try:
            answer = self.resolver.resolve(domain, "MX")
            records = list(answer)
        except dns.resolver.NXDOMAIN:
            raise RouteFailure("bounced", f"5.1.2 domain {domain} does not exist") from None
        except dns.resolver.NoAnswer:
            records = []
        except dns.exception.DNSException as exc:
            raise RouteFailure("deferred", f"4.4.3 DNS lookup of {domain} failed: {exc}") from None
        if any(r.exchange.to_text() == "." for r in records):
            # RFC 7505 §3: a null MX says the domain accepts no mail.
            raise RouteFailure("bounced", f"5.1.10 {domain} accepts no mail (null MX)")
        if not records:
            names = [domain]  # RFC 5321 §5.1: the implicit MX
        else:
            random.shuffle(records)
            records.sort(key=lambda r: r.preference)
            names = [r.exchange.to_text().rstrip(".") for r in records]
        hosts: list[Host] = []
        for name in names:
            hosts.extend(Host(name, address, self.port) for address in self._addresses(name))
            if len(hosts) >= MAX_HOSTS:
                break
        if not hosts:
            if not records:
                raise RouteFailure("bounced", f"5.4.4 {domain} has no MX and no address")
            raise RouteFailure("deferred", f"4.4.3 no address found for the MX hosts of {domain}")
        return hosts[:MAX_HOSTS]

    # --- delivery --------------------------------------------------------------------------

    def deliver(self, outgoing: Outgoing, deadline: float) -> list[RecipientResult]:
        domain = outgoing.recipients[0].rpartition("@")[2].lower()
        try:
            hosts = self.hosts(domain)
        except RouteFailure as failure:
            return [RecipientResult(r, failure.outcome, None, failure.reply)
                    for r in outgoing.recipients]
        last = _HostFailed("4.4.1 no host could be reached")
        for host in hosts:
            if time.monotonic() >= deadline:
                break
            try:
                return self._deliver_to(host, outgoing, deadline, use_tls=True)
            except _HostFailed as failure:
                last = failure
                logger.info("%s: %s", host.label, failure.reply)
        outcome = "bounced" if last.code and 500 <= last.code < 600 else "deferred"
        host_label = host.label if hosts else ""
        return [RecipientResult(r, outcome, last.code, last.reply, host_label)
                for r in outgoing.recipients]

    def _deliver_to(self, host: Host, outgoing: Outgoing, deadline: float, use_tls: bool):
        def wait(limit: float) -> float:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("attempt deadline passed")
            return min(limit, left)

        key = (host.address, host.port, host.name)
        cached = self._take_cached(key)
        if cached is not None:
            try:
                return self._run(cached, key, host, outgoing, wait, reused=True)
            except _Stale:
                pass  # the far side closed it meanwhile: a fresh connection below
        try:
            sock = socket.create_connection((host.address, host.port), wait(self.timeouts.connect))
        except OSError as exc:
            raise _HostFailed(f"4.4.1 connect to {host.label} failed: {exc}") from None
        client = smtplib.SMTP(local_hostname=self.helo)
        client.sock = sock
        client._host = host.name
        try:
            self._open(client, host, wait, use_tls)
        except ssl.SSLError as exc:
            client.close()
            if not use_tls:
                raise _HostFailed(f"4.7.0 TLS with {host.label} failed: {exc}") from None
            logger.info("%s: TLS failed (%s); trying without", host.label, exc)
            return self._deliver_to(host, outgoing, deadline, use_tls=False)
        except _HostFailed:
            self._quit(client)
            raise
        return self._run(client, key, host, outgoing, wait, reused=False)

    def _run(self, client, key, host, outgoing, wait, reused: bool) -> list[RecipientResult]:
        reusable = False
        try:
            results, reusable = self._transaction(client, host, outgoing, wait, reused)
            return results
        finally:
            if reusable:
                self._put_cached(key, client)
            else:
                self._quit(client)

    # --- connection cache (Postfix's smtp_connection_cache_*: one session, many messages) -----

    def _take_cached(self, key) -> smtplib.SMTP | None:
        with self._cache_lock:
            entry = self._cache.pop(key, None)
        if entry is None:
            return None
        client, idle_since, uses = entry
        if time.monotonic() - idle_since > CACHE_IDLE or uses >= CACHE_MAX_USES:
            self._quit(client)
            return None
        client._correio_uses = uses
        return client

    def _put_cached(self, key, client: smtplib.SMTP) -> None:
        uses = getattr(client, "_correio_uses", 0) + 1
        with self._cache_lock:
            old = self._cache.pop(key, None)
            self._cache[key] = (client, time.monotonic(), uses)
            now = time.monotonic()
            stale = [self._cache.pop(k)[0] for k, (_, idle_since, _) in list(self._cache.items())
                     if now - idle_since > CACHE_IDLE]
            while len(self._cache) > CACHE_MAX_HOSTS:
                stale.append(self._cache.pop(next(iter(self._cache)))[0])
        for other in [entry[0] for entry in [old] if entry] + stale:
            self._quit(other)

    def close(self) -> None:
        """QUIT every cached connection."""
        with self._cache_lock:
            clients = [entry[0] for entry in self._cache.values()]
            self._cache.clear()
        for client in clients:
            self._quit(client)

    @staticmethod
    def _quit(client: smtplib.SMTP) -> None:
        if client.sock is not None:
            try:
                client.sock.settimeout(QUIT_TIMEOUT)
                client.quit()
            except (smtplib.SMTPException, OSError):
                pass
        client.close()

    # --- one session ----------------------------------------------------------------------

    def _login(self, client: smtplib.SMTP) -> None:
        """AUTH PLAIN, else LOGIN (RFC 4954, 4616); one mechanism, one try."""
        mechanisms = client.esmtp_features.get("auth", "").upper().split()
        client.user, client.password = self.smarthost_user, self.smarthost_password
        if "PLAIN" in mechanisms:
            client.auth("PLAIN", client.auth_plain)
        elif "LOGIN" in mechanisms:
            client.auth("LOGIN", client.auth_login, initial_response_ok=False)
        else:
            raise smtplib.SMTPNotSupportedError("no usable AUTH mechanism")

    def _open(self, client: smtplib.SMTP, host: Host, wait, use_tls: bool) -> None:
        """Greeting, EHLO, STARTTLS, AUTH. Raises ``_HostFailed``, or ``ssl.SSLError`` for a
        failed TLS handshake (the caller then tries without TLS)."""
        stage = "greeting"
        try:
            client.sock.settimeout(wait(self.timeouts.command))
            code, message = client.getreply()
            if code != 220:
                raise _HostFailed(f"{host.label} greeted with {_reply_text(code, message)}", code)
            stage = "EHLO"
            code, message = client.ehlo()
            if code != 250:
                code, message = client.helo()
                if code != 250:
                    raise _HostFailed(f"{host.label} refused HELO: {_reply_text(code, message)}",
                                      code)
            if use_tls and client.has_extn("starttls"):
                stage = "STARTTLS"
                client.starttls(context=self.tls_context)
                client.ehlo()
            elif self.smarthost and self.smarthost_user and not _is_loopback(host.address):
                raise _HostFailed(f"4.7.0 {host.label} offers no STARTTLS; not sending the "
                                  "smarthost password in clear")
            if self.smarthost and self.smarthost_user and host.name == self.smarthost[0]:
                stage = "AUTH"
                try:
                    self._login(client)
                except smtplib.SMTPAuthenticationError as exc:
                    raise _HostFailed(f"{host.label} refused our login: "
                                      f"{_reply_text(exc.smtp_code, exc.smtp_error)}") from None
                except smtplib.SMTPNotSupportedError:
                    raise _HostFailed(f"{host.label} offers no AUTH") from None
        except (OSError, smtplib.SMTPException, TimeoutError) as exc:
            if isinstance(exc, ssl.SSLError):
                raise
            client.close()  # no QUIT to a server that failed us
            raise _HostFailed(f"4.4.2 {host.label} failed during {stage}: {exc}") from None

    def _transaction(self, client: smtplib.SMTP, host: Host, outgoing: Outgoing, wait,
                     reused: bool) -> tuple[list[RecipientResult], bool]:
        """MAIL, RCPT..., DATA on an open session: (one result per recipient, whether the
        session may carry another message). On a reused session a dead connection at MAIL
        raises ``_Stale`` (nothing was sent yet)."""

        def timed(limit: float) -> None:
            client.sock.settimeout(wait(limit))

        recipients = outgoing.recipients
        accepted: list[str] = []
        results: dict[str, RecipientResult] = {}

        def finish(outcome: str, code: int | None, reply: str, among: list[str]):
            for address in among:
                if address not in results:
                    results[address] = RecipientResult(address, outcome, code, reply, host.label)

        def done(reusable: bool = False):
            return [results[r] for r in recipients], reusable

        if outgoing.needs_smtputf8 and not client.has_extn("smtputf8"):
            finish("bounced", None, f"5.6.7 {host.label} does not support SMTPUTF8, which "
                   "this message needs (RFC 6531)", recipients)
            return done()
        options = []
        if client.has_extn("size"):
            options.append(f"SIZE={outgoing.size}")
        seven_bit = outgoing.eight_bit and not client.has_extn("8bitmime")
        if outgoing.eight_bit and not seven_bit:
            options.append("BODY=8BITMIME")
        if outgoing.needs_smtputf8:
            options.append("SMTPUTF8")
        pipelining = client.has_extn("pipelining")
        stage = "MAIL FROM"
        try:
            timed(self.timeouts.command)
            if pipelining:
                # RFC 2920: MAIL, every RCPT and DATA in one write, replies read in order.
                replies = self._pipelined(client, outgoing.mail_from, options, recipients)
            else:
                replies = None
            code, message = replies.pop(0) if replies else client.mail(outgoing.mail_from,
                                                                       options)
        except (OSError, smtplib.SMTPException, TimeoutError) as exc:
            client.close()
            if reused:
                raise _Stale() from exc
            finish("deferred", None, f"4.4.2 {host.label} failed during {stage}: {exc}",
                   recipients)
            return done()
        if reused and code == 421:
            client.close()
            raise _Stale()
        try:
            if not 200 <= code < 300:
                # (Pipelined RCPT and DATA replies were read already: 503s to ignore.)
                finish(_failure(code), code, _reply_text(code, message), recipients)
                return done()
            for address in recipients:
                stage = "RCPT TO"
                timed(self.timeouts.command)
                code, message = replies.pop(0) if replies else client.rcpt(address)
                if 200 <= code < 300:
                    accepted.append(address)
                else:
                    finish(_failure(code), code, _reply_text(code, message), [address])
            stage = "DATA"
            timed(self.timeouts.data_init)
            if replies:
                code, message = replies.pop(0)
            elif accepted:
                client.putcmd("data")
                code, message = client.getreply()
            else:
                # Nothing accepted: end the transaction and keep the session.
                code, message = client.rset()
                return done(200 <= code < 300)
            if code != 354:
                finish(_failure(code), code, _reply_text(code, message), accepted)
                return done(not accepted and 500 <= code < 600)
            if not accepted:
                # RFC 2920 §3.1: DATA went out with the batch though no RCPT was accepted and
                # the server said go ahead: send an empty message to close it, never deliver.
                client.send(b".\r\n")
                client.getreply()
                return done()
            stage = "sending the message"
            payload = data_payload(outgoing.render(seven_bit))
            for start in range(0, len(payload), DATA_CHUNK):
                timed(self.timeouts.data_block)
                client.sock.sendall(payload[start:start + DATA_CHUNK])
            stage = "end of data"
            timed(self.timeouts.data_term)
            code, message = client.getreply()
            finish(_outcome(code), code, _reply_text(code, message), accepted)
            return done(code < 400)
        except (OSError, smtplib.SMTPException, TimeoutError) as exc:
            # A failure after RCPT: the remaining recipients wait for a retry (if the far side
            # had taken the message before the connection broke, it arrives twice: RFC 1047).
            client.close()
            finish("deferred", None, f"4.4.2 {host.label} failed during {stage}: {exc}",
                   recipients)
            return done()

    def _pipelined(self, client: smtplib.SMTP, mail_from: str, options: list[str],
                   recipients: list[str]) -> list[tuple[int, bytes]]:
        encoding = "utf-8" if "SMTPUTF8" in options else "ascii"
        client.command_encoding = encoding
        option_text = (" " + " ".join(options)) if options else ""
        lines = [f"MAIL FROM:{smtplib.quoteaddr(mail_from)}{option_text}"]
        lines += [f"RCPT TO:{smtplib.quoteaddr(r)}" for r in recipients]
        lines.append("DATA")
        client.send(("\r\n".join(lines) + "\r\n").encode(encoding))
        return [client.getreply() for _ in lines]
