"""Real POP3 clients against the listener: Debian's fetchmail (over STLS and POP3S, keeping and
deleting mail, remembering UIDLs) and curl (pop3:// and pop3s://), checked byte for byte."""

import os
import subprocess

import pytest

from mailcore.mime.wire import to_crlf
from mailcore.models import Message
from tests.conftest import PASSWORD
from tests.factories import make_message

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGES = [
    make_message(subject="plain one"),
    b"Subject: bare LFs and dots\n\n.dot first\n..two dots\nlast line\n",
    b"Subject: no final line end\r\n\r\nno end",
    make_message(subject="with a file", attachments=[("f.bin", os.urandom(30_000),
                                                      "application/octet-stream")]),
]


def as_delivered_by_fetchmail(raws: list[bytes]) -> bytes:
    """fetchmail hands each message to the MDA with LF line ends (--invisible: no Received)."""
    return b"".join(to_crlf(raw).replace(b"\r\n", b"\n") for raw in raws)


def fetchmail(tmp_path, port: int, tls, options: str, extra: tuple[str, ...] = ()):
    out = tmp_path / "delivered"
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        f"poll 127.0.0.1 service {port} protocol pop3 uidl\n"
        f'  user "demo@example.test" there with password "{PASSWORD}" is "root" here\n'
        f'  options {options} sslcertck sslcertfile "{tls.ca_path}"'
        f' sslcommonname "pop.example.test"\n'
        f'  mda "cat >> {out}"\n'
    )
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(tmp_path), FETCHMAILHOME=str(tmp_path))
    result = subprocess.run(
        ["fetchmail", "-f", str(rc), "--nosyslog", "--invisible", *extra],
        env=env, capture_output=True, timeout=120,
    )
    return result.returncode, out.read_bytes() if out.exists() else b"", result.stderr.decode()


def test_fetchmail_keeps_then_downloads_and_deletes_the_mailbox(
    start_pop3, tls, deliver, inbox, tmp_path
):
    deliver(*MESSAGES[:3])
    server = start_pop3(pop3s=True)
    # Over STLS, keeping the mail on the server.
    code, delivered, log = fetchmail(tmp_path, server.port, tls, "keep")
    assert code == 0, log
    assert delivered == as_delivered_by_fetchmail(MESSAGES[:3])
    assert Message.objects.filter(folder=inbox).count() == 3
    # UIDLs are stable, so fetchmail knows it has seen them all (exit 1: no new mail).
    code, delivered_again, log = fetchmail(tmp_path, server.port, tls, "keep")
    assert code == 1 and delivered_again == delivered, log
    # Over POP3S, a new message, then everything fetched and deleted.
    deliver(MESSAGES[3])
    code, delivered, log = fetchmail(tmp_path, server.tls_port, tls, "ssl nokeep fetchall")
    assert code == 0, log
    assert delivered == as_delivered_by_fetchmail(MESSAGES[:3] + MESSAGES[:4])
    assert Message.objects.filter(folder=inbox).count() == 0
    inbox.refresh_from_db()
    assert inbox.message_count == 0


def curl(*args: str, tls=None) -> bytes:
    command = ["curl", "--silent", "--show-error", "--max-time", "60",
               "--user", f"demo@example.test:{PASSWORD}", *args]
    if tls is not None:
        command += ["--cacert", tls.ca_path]
    result = subprocess.run(command, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def test_curl_lists_retrieves_and_deletes(start_pop3, tls, deliver, inbox):
    deliver(*MESSAGES)
    server = start_pop3(pop3s=True)
    base = f"pop3://127.0.0.1:{server.port}"
    wires = [to_crlf(raw) for raw in MESSAGES]
    listing = b"".join(f"{n} {len(w)}\r\n".encode() for n, w in enumerate(wires, 1))
    assert curl(f"{base}/") == listing
    for n, wire in enumerate(wires, 1):
        assert curl(f"{base}/{n}") == wire
    uidls = b"".join(f"{n} {inbox.uidvalidity}.{n}\r\n".encode() for n in range(1, 5))
    assert curl(f"{base}/", "--request", "UIDL") == uidls
    # Over STLS (required) and over POP3S, with the certificate checked.
    assert curl(f"{base}/2", "--ssl-reqd", tls=tls) == wires[1]
    assert curl(f"pop3s://127.0.0.1:{server.tls_port}/4", tls=tls) == wires[3]
    assert curl(f"{base}/1", "--request", "DELE", "--head") == b""
    assert list(Message.objects.filter(folder=inbox).values_list("uid", flat=True)) == [2, 3, 4]
