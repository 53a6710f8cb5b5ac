"""The rspamd client: ``/checkv2`` on the normal worker at end of DATA with the SMTP facts, and
``/learnspam`` / ``/learnham`` on the controller (rspamd's HTTP protocol, see its
``protocol.md``). Blocking (stdlib ``http.client`` with a timeout): run in a thread.

rspamd down, slow or answering nonsense never costs a message: ``check_message`` then returns
an unscanned result, and the message is accepted and marked so."""

import http.client
import json
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

logger = logging.getLogger("correio.trust")
# Symbols kept with a message: the heaviest, enough to say why it scored as it did.
MAX_SYMBOLS = 12
MAX_REPLY = 1024 * 1024


@dataclass(frozen=True)
class SpamResult:
    scanned: bool
    action: str = ""  # no action, greylist, add header, rewrite subject, soft reject, reject
    score: float = 0.0
    required: float = 0.0
    symbols: tuple[str, ...] = ()  # "NAME(score)", heaviest first


UNSCANNED = SpamResult(scanned=False)


def _post(url: str, path: str, body: bytes, headers: list[tuple[str, str]], timeout: float):
    parts = urlsplit(url)
    connection_class = (http.client.HTTPSConnection if parts.scheme == "https"
                        else http.client.HTTPConnection)
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.putrequest("POST", parts.path.rstrip("/") + path)
        for name, value in [*headers, ("Content-Length", str(len(body)))]:
            connection.putheader(name, value)
        connection.endheaders(body)
        reply = connection.getresponse()
        return reply.status, reply.read(MAX_REPLY)
    finally:
        connection.close()


def _header(value: str) -> str:
    # HTTP field values: no CR/LF (a hostile HELO or address must not add fields).
    return "".join(ch for ch in value if ch >= " " and ch != "\x7f")[:512]


def check_message(url: str, raw: bytes, *, ip: str, helo: str, mail_from: str,
                  recipients: tuple[str, ...], user: str | None, hostname: str,
                  queue_id: str = "", timeout: float = 5.0) -> SpamResult:
    headers = [("IP", ip), ("Helo", _header(helo)), ("From", _header(mail_from)),
               ("MTA-Name", _header(hostname))]
    headers += [("Rcpt", _header(r)) for r in recipients]
    if user:
        headers.append(("User", _header(user)))
    if queue_id:
        headers.append(("Queue-Id", _header(queue_id)))
    try:
        status, body = _post(url, "/checkv2", raw, headers, timeout)
        if status != 200:
            raise ValueError(f"HTTP {status}")
        reply = json.loads(body)
        symbols = sorted(
            ((name, float(s.get("score", 0))) for name, s in reply.get("symbols", {}).items()),
            key=lambda item: -abs(item[1]),
        )
        return SpamResult(
            scanned=True,
            action=str(reply.get("action", "no action"))[:32],
            score=float(reply.get("score", 0.0)),
            required=float(reply.get("required_score", 0.0)),
            symbols=tuple(f"{name[:64]}({score:g})" for name, score in symbols[:MAX_SYMBOLS]),
        )
    except (OSError, ValueError, TypeError, AttributeError, http.client.HTTPException) as error:
        logger.warning("rspamd at %s: %s; message accepted unscanned", url, error)
        return UNSCANNED


def learn(controller_url: str, raw: bytes, spam: bool, *, password: str = "",
          timeout: float = 30.0) -> bool:
    """Train rspamd's classifier with one message; False when rspamd refused or failed (a
    message it already learnt is refused with 208, which counts as done)."""
    headers = [("Password", password)] if password else []
    try:
        status, body = _post(controller_url, "/learnspam" if spam else "/learnham", raw,
                             headers, timeout)
    except (OSError, http.client.HTTPException) as error:
        logger.warning("rspamd learn at %s: %s", controller_url, error)
        raise
    if status in (200, 208):
        return True
    logger.warning("rspamd learn: HTTP %s %s", status, body[:200])
    return False
