"""Every private name of aiosmtpd (and of the asyncio stream reader it owns) that Correio's SMTP
listeners use, in one place, with why.

``CorreioSMTP`` subclasses ``aiosmtpd.smtp.SMTP`` to give every reply an enhanced status code,
bound memory while reading DATA, pipeline replies, and run AUTH through the service layer; that
reaches past aiosmtpd's public API. These names can change in any aiosmtpd release, so
pyproject.toml pins ``aiosmtpd>=1.4.6,<1.5`` (1.4.5 fixed SMTP smuggling, 1.4.6 plaintext
injected before STARTTLS), and ``tests/smtp/test_aiosmtpd_private.py`` fails loudly if a
listed name disappears or changes signature, or if the listeners use a private name that is not
listed here. Upgrading aiosmtpd means reading its changes for each entry below.

This module is data only: the listeners use the names directly (they are subclass internals),
and nothing imports this at run time."""

from dataclasses import dataclass

SMTP = "aiosmtpd.smtp.SMTP"
STREAM_READER = "asyncio.StreamReader"


@dataclass(frozen=True)
class PrivateName:
    owner: str  # SMTP or STREAM_READER
    name: str
    # "method", "coroutine" (an async method), "attribute" (set per instance by the owner),
    # "class attribute" (a default on the class the owner reads at run time)
    kind: str
    # str(inspect.signature(...)) for methods, as in aiosmtpd 1.4.6 / Python 3.11
    signature: str | None
    why: str


PRIVATE_NAMES: tuple[PrivateName, ...] = (
    # --- aiosmtpd.smtp.SMTP: methods we call --------------------------------------------------
    PrivateName(SMTP, "_call_handler_hook", "coroutine", "(self, command: str, *args) -> Any",
                "runs the handler's handle_MAIL/RCPT/DATA from our own smtp_MAIL/RCPT/DATA"),
    PrivateName(SMTP, "_set_rset_state", "method", "(self)",
                "HELO, EHLO and RSET reset the transaction (RFC 5321 §4.1.4)"),
    PrivateName(SMTP, "_set_post_data_state", "method", "(self)",
                "a fresh envelope after DATA, whatever its outcome"),
    PrivateName(SMTP, "_getaddr", "method",
                "(self, arg: str) -> Tuple[Optional[str], Optional[str]]",
                "parses a path our fast pattern does not cover (quoted local parts, routes)"),
    PrivateName(SMTP, "_getparams", "method",
                "(self, params: Sequence[str]) -> Optional[Dict[str, Union[str, bool]]]",
                "parses MAIL/RCPT parameters (SIZE=, BODY=, SMTPUTF8)"),
    PrivateName(SMTP, "_strip_command_keyword", "method",
                "(self, keyword: str, arg: str) -> Optional[str]",
                "strips FROM:/TO: off MAIL and RCPT arguments"),
    PrivateName(SMTP, "_syntax_available", "method", "(self, method: Callable) -> bool",
                "HELP lists only the commands available now (we extend it for AUTH)"),
    PrivateName(SMTP, "_reset_timeout", "method",
                "(self, duration: Optional[float] = None) -> None",
                "incoming DATA restarts the idle timer (our DATA reader bypasses aiosmtpd's)"),
    # --- aiosmtpd.smtp.SMTP: methods we override ----------------------------------------------
    PrivateName(SMTP, "_timeout_cb", "method", "(self)",
                "overridden to answer 421 4.4.2 before closing an idle session"),
    PrivateName(SMTP, "_create_envelope", "method", "(self) -> aiosmtpd.smtp.Envelope",
                "overridden to make a CorreioEnvelope (RCPT-time resolution)"),
    # --- aiosmtpd.smtp.SMTP: instance attributes -----------------------------------------------
    PrivateName(SMTP, "_reader", "attribute", None,
                "set by _cb_client_connected, the stream reader: DATA is read from its buffer, and push() looks for "
                "pipelined commands in it"),
    PrivateName(SMTP, "_writer", "attribute", None,
                "pipelined replies are written and drained in one go"),
    PrivateName(SMTP, "_handler_coroutine", "attribute", None,
                "cancelled on QUIT and when a client collects too many errors"),
    PrivateName(SMTP, "_auth_methods", "attribute", None,
                "submission narrows it to LOGIN and PLAIN, EHLO lists it"),
    PrivateName(SMTP, "_auth_require_tls", "attribute", None,
                "whether EHLO may advertise AUTH outside TLS"),
    PrivateName(SMTP, "_smtp_methods", "attribute", None, "HELP looks commands up in it"),
    PrivateName(SMTP, "_tls_protocol", "attribute", None,
                "set once STARTTLS completed: the session is encrypted"),
    PrivateName(SMTP, "_original_transport", "attribute", None,
                "set by STARTTLS: connection_made after the handshake is not a new client"),
    # --- aiosmtpd.smtp.SMTP: class attributes read at run time ----------------------------------
    PrivateName(SMTP, "line_length_limit", "class attribute", None,
                "read by __init__ to size the stream reader: set before super().__init__"),
    PrivateName(SMTP, "command_size_limits", "class attribute", None,
                "a class-level dict aiosmtpd grows at every EHLO: replaced per instance"),
    # --- asyncio.StreamReader (SMTP._reader) -------------------------------------------------
    PrivateName(STREAM_READER, "_buffer", "attribute", None,
                "DATA takes whole lines from it (aiosmtpd's STARTTLS discard uses it too)"),
    PrivateName(STREAM_READER, "_eof", "attribute", None,
                "a client closing mid-DATA ends the read"),
    PrivateName(STREAM_READER, "_maybe_resume_transport", "method", "(self)",
                "resumes a socket paused by flow control once DATA consumed the buffer"),
    PrivateName(STREAM_READER, "_wait_for_data", "coroutine", "(self, func_name)",
                "waits for more DATA bytes without copying the buffer"),
)


def names_of(owner: str) -> set[str]:
    return {entry.name for entry in PRIVATE_NAMES if entry.owner == owner}
