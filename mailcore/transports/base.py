"""The transport interface: what the queue service gives a transport and what it gets back."""

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Outcome = Literal["delivered", "deferred", "bounced"]


@dataclass
class RecipientResult:
    address: str
    outcome: Outcome
    code: int | None  # the SMTP reply code, None when there was no reply (timeout, DNS)
    reply: str  # the reply text, or what went wrong
    host: str = ""  # the host that answered ("mx.example.org[192.0.2.1]")


@dataclass
class Outgoing:
    """One message for one group of recipients.

    ``render(seven_bit)`` returns the bytes to send (clean CRLF lines, DKIM-signed when the
    domain has a key); with ``seven_bit`` the body is first downgraded for a server without
    8BITMIME. ``eight_bit`` says the body has 8-bit octets, ``needs_smtputf8`` that an address
    or a header is not ASCII (RFC 6531)."""

    mail_from: str
    recipients: list[str]
    render: Callable[[bool], bytes]
    size: int
    eight_bit: bool = False
    needs_smtputf8: bool = False
    extra: dict = field(default_factory=dict)


class Transport(abc.ABC):
    """Deliver ``Outgoing`` mail; never raise for a delivery problem, report it per recipient."""

    @classmethod
    def from_settings(cls) -> "Transport":
        return cls()

    def close(self) -> None:  # noqa: B027 - optional hook; most transports keep nothing open
        """Release whatever the transport keeps open between deliveries."""

    def route(self, domain: str) -> str:
        """A key grouping recipients that share one SMTP transaction (their destination)."""
        return domain

    @abc.abstractmethod
    def deliver(self, outgoing: Outgoing, deadline: float) -> list[RecipientResult]:
        """Try once to deliver to every recipient; ``deadline`` is a ``time.monotonic()`` value
        no network wait may pass. One result per recipient, in order."""
