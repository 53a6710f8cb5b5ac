"""BINARY (RFC 3516) against a real listener with imaplib and raw sockets: FETCH BINARY[...],
BINARY.PEEK, partials and BINARY.SIZE give the decoded octets; an unknown encoding is
NO [UNKNOWN-CTE]; APPEND takes literal8 (NULs included, re-encoded in base64 so BODY[] never
carries a NUL), within the same limits as any literal, before and after login."""

import base64
import imaplib
import socket
import tracemalloc

import pytest

from mailcore.models import Message
from mailcore.services import delivery
from tests.imap.test_hostile import _fetch_raw, logged_in, login, open_raw, until_tag

pytestmark = pytest.mark.django_db(transaction=True)

PAYLOAD = bytes(range(256)) * 3  # every octet, NULs included
MULTIPART = (
    b"From: a@example.test\r\nTo: demo@example.test\r\nSubject: parts\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n"
    b"--zz\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"caf=C3=A9 au lait  \r\nsoft=\r\nbreak = \t\r\nend\r\n"
    b"--zz\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + b"\r\n".join(base64.encodebytes(PAYLOAD).split(b"\n")).rstrip(b"\r\n") + b"\r\n"
    b"--zz\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
    b"begin 644 x\r\n`\r\nend\r\n"
    b"--zz--\r\n"
)


def _raw_fetch(sock, reader, tag: bytes, command: bytes) -> bytes:
    sock.sendall(tag + b" " + command + b"\r\n")
    return b"".join(until_tag(reader, tag))


def test_fetch_binary_decodes_quoted_printable_and_base64_parts(imap, mailbox):
    delivery.deliver_to_mailboxes(MULTIPART, [mailbox.pk])
    sock, reader = open_raw(imap.port)
    login(sock, reader)
    assert b"BINARY" in _raw_fetch(sock, reader, b"c", b"CAPABILITY").split(b"\r\n")[0]
    _raw_fetch(sock, reader, b"s", b"SELECT INBOX")
    out = _raw_fetch(sock, reader, b"f", b"FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])")
    text = "café au lait\r\nsoftbreak end".encode()  # the last CRLF is the delimiter's
    assert b"BINARY.SIZE[1] %d" % len(text) in out
    assert b"BINARY[1] {%d}\r\n" % len(text) + text + b")" in out
    assert out.endswith(b"f OK FETCH completed\r\n")
    # The base64 part comes back as the octets encoded, NULs and all, in a literal8.
    out = _raw_fetch(sock, reader, b"g", b"FETCH 1 (BINARY.SIZE[2] BINARY.PEEK[2])")
    assert b"BINARY.SIZE[2] %d" % len(PAYLOAD) in out
    assert b"BINARY[2] ~{%d}\r\n" % len(PAYLOAD) + PAYLOAD + b")\r\n" in out
    # A partial counts decoded octets (RFC 3516 §4.2).
    out = _raw_fetch(sock, reader, b"h", b"FETCH 1 (BINARY.PEEK[2]<250.10>)")
    assert b"BINARY[2]<250> ~{10}\r\n" + PAYLOAD[250:260] + b")" in out
    # BINARY.PEEK and BINARY.SIZE leave \Seen alone; BINARY sets it (§6.4.5 rules).
    assert not Message.objects.get().seen
    out = _raw_fetch(sock, reader, b"i", b"FETCH 1 (BINARY[1]<0.4>)")
    assert b"BINARY[1]<0> {4}\r\ncaf\xc3" in out and b"\\Seen" in out
    assert Message.objects.get().seen
    sock.close()


def test_an_unknown_transfer_encoding_is_no_unknown_cte_without_half_a_response(imap, mailbox):
    delivery.deliver_to_mailboxes(MULTIPART, [mailbox.pk])
    client = logged_in(imap.port)
    client.select("INBOX")
    typ, data = client.fetch("1", "(UID BINARY.PEEK[3])")
    assert typ == "NO" and b"[UNKNOWN-CTE]" in data[0]
    typ, data = client.fetch("1", "(BINARY.SIZE[3])")
    assert typ == "NO" and b"[UNKNOWN-CTE]" in data[0]
    # No FETCH response was started for it, and the session goes on.
    assert client.fetch("1", "(BODY.PEEK[3])")[0] == "OK"
    # Sections that BINARY does not have are syntax errors; missing parts are NIL.
    for bad in ("BINARY[1.MIME]", "BINARY[HEADER]", "BINARY.SIZE[1]<0.1>", "BINARY[0]"):
        with pytest.raises(imaplib.IMAP4.error, match="BAD"):
            client.fetch("1", f"({bad})")
    typ, data = client.fetch("1", "(BINARY.PEEK[9] BINARY.SIZE[9])")
    assert typ == "OK" and b"BINARY[9] NIL" in data[0] and b"BINARY.SIZE[9] 0" in data[0]
    client.logout()


def test_append_literal8_with_nuls_stores_base64_and_fetches_back_unchanged(imap, mailbox):
    body = b"\x00-\xe4\n\r\n\x00\x00end"
    message = (b"From: a@example.test\r\nSubject: bin\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n"
               b"\r\n" + body)
    sock, reader = open_raw(imap.port)
    login(sock, reader)
    sock.sendall(b"a APPEND INBOX ~{%d}\r\n" % len(message))
    assert reader.readline().startswith(b"+ ")
    sock.sendall(message + b"\r\n")
    assert until_tag(reader, b"a")[-1].startswith(b"a OK [APPENDUID")
    stored = Message.objects.get()
    assert stored.structure["encoding"] == "base64"
    _raw_fetch(sock, reader, b"s", b"SELECT INBOX")
    out = _raw_fetch(sock, reader, b"f", b"FETCH 1 (BODY.PEEK[1])")
    assert b"\x00" not in out  # RFC 3501 §4.3: no NUL in an ordinary literal
    out = _raw_fetch(sock, reader, b"g", b"FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])")
    assert b"BINARY.SIZE[1] %d BINARY[1] ~{%d}\r\n" % (len(body), len(body)) + body in out
    # The same with LITERAL+ (RFC 7888 allows ~{n+}) and in a MULTIAPPEND.
    plain = b"Subject: plain\r\n\r\nhello\r\n"
    sock.sendall(b"m APPEND INBOX ~{%d+}\r\n%s {%d+}\r\n%s\r\n"
                 % (len(message), message, len(plain), plain))
    assert until_tag(reader, b"m")[-1].startswith(b"m OK [APPENDUID")
    assert Message.objects.count() == 3
    # NULs in the header cannot be re-encoded: refused, nothing stored.
    bad = b"Subject: a\x00b\r\n\r\nbody\r\n"
    sock.sendall(b"n APPEND INBOX ~{%d+}\r\n%s\r\n" % (len(bad), bad))
    assert until_tag(reader, b"n")[-1].startswith(b"n NO [PARSE]")
    assert Message.objects.count() == 3
    sock.close()


def test_literal8_outside_append_is_bad_before_and_after_login(imap, mailbox):
    sock, reader = open_raw(imap.port)
    # Before login: LOGIN's arguments are strings, never literal8 (RFC 3516 §7).
    sock.sendall(b"a LOGIN ~{4+}\r\nu\x00er ~{2+}\r\npw\r\n")
    assert until_tag(reader, b"a")[-1].startswith(b"a BAD")
    # APPEND before login: refused before any "+" is sent (issue 12's order of checks).
    sock.sendall(b"b APPEND INBOX ~{100}\r\n")
    assert until_tag(reader, b"b")[-1].startswith(b"b BAD")
    login(sock, reader)
    for command in (b"c SELECT ~{5+}\r\nIN\x00OX\r\n", b"d CREATE ~{3+}\r\na\x00b\r\n",
                    b"e SEARCH TEXT ~{3+}\r\na\x00b\r\n",
                    b"f APPEND INBOX (\\Seen) UTF8 ({5+}\r\nhello)\r\n"):
        tag = command[:1]
        sock.sendall(command)
        assert until_tag(reader, tag)[-1].startswith(tag + b" BAD"), command
    assert _raw_fetch(sock, reader, b"z", b"NOOP").endswith(b"z OK NOOP completed\r\n")
    sock.close()


def test_literal8_limits_hold_before_and_after_login(start_imap, mailbox):
    listener = start_imap()
    size = 25 * 1024 * 1024 + 1  # past the message size limit (25 MiB)
    sock, reader = open_raw(listener.port)
    # Before login a non-synchronizing literal8 of 25 MiB cannot be skipped: BYE, no read.
    sock.sendall(b"a APPEND INBOX ~{%d+}\r\n" % size)
    lines = until_tag(reader, b"a")
    assert any(line.startswith(b"* BYE") for line in lines), lines
    sock.close()
    sock, reader = open_raw(listener.port)
    login(sock, reader)
    sock.sendall(b"b APPEND INBOX ~{%d}\r\n" % size)
    assert until_tag(reader, b"b")[-1].startswith(b"b NO [TOOBIG]")
    # A literal8 in LOGIN-sized commands after login counts against the same budget.
    sock.sendall(b"c APPEND INBOX ~{%d+}\r\n" % size)
    lines = until_tag(reader, b"c")
    assert any(line.startswith(b"* BYE") for line in lines)
    sock.close()
    assert Message.objects.count() == 0
    # The listener is still serving.
    client = logged_in(listener.port)
    assert client.noop()[0] == "OK"
    client.logout()


def test_a_24_mib_literal8_message_within_the_limit_is_stored(start_imap, mailbox):
    listener = start_imap()
    # 24 MiB of binary: within the limit as sent, larger than it once stored in base64.
    body = b"\x00\x01\x02\x03" * (6 * 1024 * 1024)
    message = (b"Subject: big\r\nContent-Type: application/octet-stream\r\n"
               b"Content-Transfer-Encoding: binary\r\n\r\n" + body)
    sock = socket.create_connection(("127.0.0.1", listener.port), timeout=60)
    reader = sock.makefile("rb")
    reader.readline()
    login(sock, reader)
    sock.sendall(b"a APPEND INBOX ~{%d+}\r\n" % len(message))
    sock.sendall(message + b"\r\n")
    lines = until_tag(reader, b"a")
    assert lines[-1].startswith(b"a OK [APPENDUID"), lines[-1]
    sock.close()
    stored = Message.objects.get()
    assert stored.structure["encoding"] == "base64"


def test_binary_fetch_output_is_streamed_too(imap, mailbox):
    # A 1.4 MB base64 attachment: 30 decoded slices of 1 MB must not all be held at once.
    payload = bytes(range(256)) * 4096  # 1 MiB
    raw = (b"Subject: att\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n"
           + base64.encodebytes(payload).replace(b"\n", b"\r\n"))
    delivery.deliver_to_mailboxes(raw, [mailbox.pk])
    sock, reader = open_raw(imap.port)
    login(sock, reader)
    _raw_fetch(sock, reader, b"s", b"SELECT INBOX")
    atts = b" ".join(b"BINARY.PEEK[1]<%d.1000000>" % i for i in range(30))
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        lines, total = _fetch_raw(sock, reader, b"f FETCH 1 (" + atts + b")\r\n", b"f")
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert lines[-1].startswith(b"f OK") and total > 29_000_000
    assert peak < 12 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB for 30 MB of output"
    sock.close()
