"""Limits and per-listener policy of the SMTP listeners, as plain data.

The MX listener (port 25) and the submission listeners (587 with STARTTLS, 465 with implicit
TLS) run the same protocol class; what differs between them is a ``ListenerPolicy``. Limits are
shared and can be overridden in tests through ``ListenerConfig.extra["smtp_limits"]``."""

from dataclasses import dataclass

# aiosmtpd counts every command against a per-session budget ("*" for those not named); a
# budget no session can spend within session_timeout leaves a command uncounted.
UNCOUNTED = 2**62


@dataclass(frozen=True)
class SMTPLimits:
    # RFC 5321 §4.5.3.1.8: a server must accept at least 100 recipients; past that, 452 4.5.3.
    max_recipients: int = 100
    # RFC 5321 §4.5.3.1.4 and §4.5.3.1.6: a command line is at most 512 octets and a text line
    # 1000, both with CRLF; a data line may carry one more octet, the transparency dot.
    command_line: int = 512
    data_line: int = 1001
    # RFC 5321 §4.5.3.2.7: the server waits at least 5 minutes for the next command. The whole
    # session is bounded too, so a trickling client cannot hold a connection for ever.
    idle_timeout: float = 300.0
    session_timeout: float = 1800.0
    # Error replies (5xx) a client may collect before it is cut off with 421, as Postfix's
    # smtpd_hard_error_limit: a client sending garbage or harvesting addresses is dropped.
    max_errors: int = 20
    # Commands per session (aiosmtpd's call limit; 421 4.7.0 past it). Junk commands follow
    # Postfix's smtpd_junk_command_limit. MAIL, RCPT and DATA are not counted per session
    # (Postfix does not either: a sender may deliver thousands of messages over one
    # connection): their memory is bounded per transaction (max_recipients, the message
    # size), errors by max_errors and the session by session_timeout.
    max_junk_commands: int = 100
    max_auth: int = 10
    # RFC 5321 §4.4: more Received fields than this means the message is looping (554 5.4.6).
    max_received: int = 50
    # DATA past this many octets is spooled to a temporary file instead of memory, so slow or
    # idle senders of big messages hold disk, not RAM (issue 12: 1,000 connections x 25 MiB).
    spool_threshold: int = 256 * 1024
    # Messages in DATA (reading or delivering) at once from one client address, per listener;
    # past it DATA gets 451 4.7.0 (RFC 5321 §4.3.2 allows 451 there; the client retries).
    # (20, Postfix's smtp_destination_concurrency_limit, took the process to 216 MB in
    # bench/hostile.py's 40 x 5 MiB pattern: over the 200 MB target.)
    max_data_per_ip: int = 10
    # Octets of spooled messages delivered at once in the process (spool.DeliveryBudget).
    delivery_budget: int = 8 * 1024 * 1024
    # Group commit: messages finishing DATA within this window share one transaction.
    commit_window: float = 0.002
    commit_batch: int = 64

    def call_limits(self) -> dict[str, int]:
        junk = self.max_junk_commands
        return {
            "*": junk,
            "HELO": junk,
            "EHLO": junk,
            "NOOP": junk,
            "RSET": junk,
            "VRFY": junk,
            "EXPN": junk,
            "HELP": junk,
            "STARTTLS": 3,
            "AUTH": self.max_auth,
            "MAIL": UNCOUNTED,
            "DATA": UNCOUNTED,
            "RCPT": UNCOUNTED,
        }


@dataclass(frozen=True)
class ListenerPolicy:
    """What one SMTP listener allows. The MX listener never offers AUTH and never relays
    (ARCHITECTURE.md, "No open relay"); submission offers AUTH and relays for its users."""

    name: str
    # Offer STARTTLS (RFC 3207) when a certificate is configured.
    starttls: bool = True
    # The socket is TLS from the first byte (RFC 8314 submissions, port 465).
    implicit_tls: bool = False
    # Offer AUTH (RFC 4954); MAIL/RCPT/DATA need a successful AUTH when ``require_auth``.
    offer_auth: bool = False
    require_auth: bool = False
    # An authenticated session may send to any domain (the handler enforces it).
    relay: bool = False


MX_POLICY = ListenerPolicy(name="mx")
