"""Hostile clients (issue 12) against a real listener on loopback: LIST patterns that used to
backtrack for hours, literals before login, APPENDs beyond the budget, the quota or memory,
FETCH amplification, clients holding a pre-login slot, half-open TLS handshakes and TLS aborts.
Every hostile command answers within a second or is refused, and the session or the server
goes on."""

import imaplib
import logging
import os
import socket
import ssl
import threading
import time
import tracemalloc

import pytest

from mailcore.models import Mailbox, Message
from mailcore.services import delivery, folders
from tests.conftest import PASSWORD
from tests.factories import make_message
from tests.imap.conftest import ADDRESS

pytestmark = pytest.mark.django_db(transaction=True)


def open_raw(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    reader = sock.makefile("rb")
    assert reader.readline().startswith(b"* OK")
    return sock, reader


def until_tag(reader, tag: bytes) -> list[bytes]:
    lines = []
    while True:
        line = reader.readline()
        lines.append(line)
        if not line or line.startswith(tag + b" ") or line.startswith(b"* BYE"):
            return lines


def login(sock, reader):
    sock.sendall(f'l LOGIN {ADDRESS} "{PASSWORD}"\r\n'.encode())
    assert until_tag(reader, b"l")[-1].startswith(b"l OK")


def logged_in(port):
    client = imaplib.IMAP4("127.0.0.1", port, timeout=20)
    client.login(ADDRESS, PASSWORD)
    return client


# --- LIST patterns ------------------------------------------------------------------------------


def test_list_with_hundreds_of_stars_answers_at_once(imap, mailbox):
    long_name = "a" * 200 + "/" + "b" * 200
    for name in ("Projects/2024", long_name):
        folders.create_folder(mailbox, name)
    client = logged_in(imap.ports[0])
    for pattern in ("*" * 400 + "X", "*a" * 300 + "X", "%" * 300 + "a%" * 150 + "X",
                    "*%" * 250 + "b"):
        started = time.monotonic()
        typ, data = client.list('""', f'"{pattern}"')
        assert time.monotonic() - started < 1.0, pattern[:20]
        assert typ == "OK"
    # The same matcher still answers as RFC 3501 §6.3.8 says.
    typ, data = client.list('""', '"*' + "*" * 300 + 'b"')
    assert typ == "OK" and any(long_name.encode() in line for line in data if line)
    typ, data = client.list('""', '"%%%/2024"')
    assert [line.split(b'"/" ')[-1] for line in data] == [b'"Projects/2024"']
    typ, data = client.list('""', '"inbox"')
    assert data[0].endswith(b'"INBOX"')
    client.logout()


def test_a_list_pattern_beyond_the_cap_is_refused_with_limit(imap):
    client = logged_in(imap.ports[0])
    typ, data = client.list('""', '"' + "a*" * 600 + '"')
    assert typ == "NO" and b"[LIMIT]" in data[0]
    assert client.noop()[0] == "OK"
    client.logout()


# --- literals and budgets -----------------------------------------------------------------------


def test_before_login_an_append_literal_is_refused_without_a_continuation(imap):
    sock, reader = open_raw(imap.ports[0])
    sock.sendall(b"a APPEND INBOX {20000000}\r\n")
    line = reader.readline()
    assert line.startswith(b"a BAD APPEND is not allowed in the not authenticated state"), line
    sock.sendall(b"b APPEND INBOX {20000000+}\r\n" + b"x" * 65536)
    assert reader.readline().startswith(b"* BYE")
    sock.close()


def test_before_login_only_small_literals_and_a_small_total(imap):
    sock, reader = open_raw(imap.ports[0])
    sock.sendall(b"a LOGIN {9000}\r\n")
    assert reader.readline().startswith(b"a NO [TOOBIG]")
    # Three 6,000-octet ID values: each is small, together they pass the pre-login budget.
    sock.sendall(b'i ID ("a" {6000}\r\n')
    assert reader.readline().startswith(b"+")
    sock.sendall(b"x" * 6000 + b' "b" {6000}\r\n')
    assert reader.readline().startswith(b"+")
    sock.sendall(b"y" * 6000 + b' "c" {6000}\r\n')
    assert reader.readline().startswith(b"i NO [TOOBIG] Command too large")
    login(sock, reader)  # the session goes on
    sock.close()


def test_an_unknown_command_gets_no_continuation_for_its_literal(imap):
    sock, reader = open_raw(imap.ports[0])
    sock.sendall(b"a FROB {100}\r\n")
    assert reader.readline().startswith(b"a BAD Unknown")
    sock.sendall(b"b NOOP\r\n")
    assert reader.readline().startswith(b"b OK")
    sock.close()


def test_a_refused_small_non_synchronizing_literal_is_dropped_and_the_session_goes_on(imap):
    sock, reader = open_raw(imap.ports[0])
    sock.sendall(b"a SELECT {5+}\r\nINBOX\r\nb NOOP\r\n")
    assert reader.readline().startswith(b"a BAD SELECT is not allowed")
    assert reader.readline().startswith(b"b OK")
    sock.close()


def test_the_literals_of_one_command_share_one_budget_after_login(start_imap, mailbox):
    listener = start_imap(max_literal=1000, max_command=1500)
    sock, reader = open_raw(listener.ports[0])
    login(sock, reader)
    sock.sendall(b"r RENAME {900}\r\n")
    assert reader.readline().startswith(b"+")
    sock.sendall(b"x" * 900 + b" {900}\r\n")
    assert reader.readline().startswith(b"r NO [TOOBIG] Command too large")
    sock.sendall(b"n NOOP\r\n")
    assert until_tag(reader, b"n")[-1].startswith(b"n OK")
    sock.close()


def test_append_over_quota_is_refused_before_the_continuation(imap, mailbox):
    Mailbox.objects.filter(pk=mailbox.pk).update(quota=10_000)
    sock, reader = open_raw(imap.ports[0])
    login(sock, reader)
    sock.sendall(b"a APPEND INBOX {200000}\r\n")
    assert reader.readline().startswith(b"a NO [OVERQUOTA]")
    sock.sendall(b"b APPEND INBOX {2000000+}\r\n" + b"x" * 2_000_000 + b"\r\n")
    assert until_tag(reader, b"b")[-1].startswith(b"b NO [OVERQUOTA]")
    sock.sendall(b"c NOOP\r\n")
    assert until_tag(reader, b"c")[-1].startswith(b"c OK")
    assert Message.objects.count() == 0
    sock.close()


def _deleted_files(pid: int) -> int:
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        count += target.endswith("(deleted)")
    return count


def test_a_large_append_waits_on_disk_and_is_stored_byte_for_byte(start_imap, mailbox):
    listener = start_imap(spool_threshold=64 * 1024)
    raw = make_message(body=("line of the large message\r\n" * 120_000))
    before = _deleted_files(os.getpid())
    sock, reader = open_raw(listener.ports[0])
    login(sock, reader)
    sock.sendall(b"a APPEND INBOX (\\Seen) {%d}\r\n" % len(raw))
    assert reader.readline().startswith(b"+")
    sock.sendall(raw[: len(raw) // 2])
    deadline = time.monotonic() + 5
    while _deleted_files(os.getpid()) <= before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _deleted_files(os.getpid()) > before, "the half-sent message is not in a temp file"
    sock.sendall(raw[len(raw) // 2 :] + b"\r\n")
    assert until_tag(reader, b"a")[-1].startswith(b"a OK [APPENDUID")
    stored = Message.objects.get()
    assert bytes(stored.blob.data) == raw and stored.seen
    sock.close()


# --- FETCH output -------------------------------------------------------------------------------


@pytest.fixture
def big_message(mailbox):
    raw = make_message(body="0123456789abcdef" * 65536 + "\n")  # about 1 MB
    delivery.deliver_to_mailboxes(raw, [mailbox.pk])
    return raw


def _fetch_raw(sock, reader, command: bytes, tag: bytes) -> tuple[list[bytes], int]:
    """Send a command; return its response lines (literals skipped) and the octets read."""
    sock.sendall(command)
    lines, total = [], 0
    while True:
        line = reader.readline()
        total += len(line)
        lines.append(line)
        if line.rstrip().endswith(b"}") and b"{" in line:
            size = int(line.rsplit(b"{", 1)[1].rstrip(b"}\r\n"))
            while size:
                chunk = reader.read(min(size, 65536))
                size -= len(chunk)
                total += len(chunk)
        if not line or line.startswith(tag + b" "):
            return lines, total


def test_repeated_body_sections_are_answered_once(imap, big_message):
    sock, reader = open_raw(imap.ports[0])
    login(sock, reader)
    sock.sendall(b"s SELECT INBOX\r\n")
    until_tag(reader, b"s")
    started = time.monotonic()
    lines, total = _fetch_raw(sock, reader, b"f FETCH 1 (" + b"BODY.PEEK[] " * 149
                              + b"BODY.PEEK[])\r\n", b"f")
    assert lines[-1].startswith(b"f OK")
    assert total < 2 * len(big_message) and time.monotonic() - started < 2
    assert Message.objects.get().seen is False
    # BODY[] and BODY.PEEK[] are one item; the non-peek one wins (§6.4.5 sets \Seen).
    lines, _ = _fetch_raw(sock, reader, b"g FETCH 1 (BODY.PEEK[] BODY[])\r\n", b"g")
    assert lines[-1].startswith(b"g OK") and Message.objects.get().seen is True
    sock.close()


def test_too_many_distinct_body_sections_are_refused_with_limit(imap, big_message):
    sock, reader = open_raw(imap.ports[0])
    login(sock, reader)
    sock.sendall(b"s SELECT INBOX\r\n")
    until_tag(reader, b"s")
    atts = b" ".join(b"BODY.PEEK[]<%d.1000000>" % i for i in range(40))
    lines, total = _fetch_raw(sock, reader, b"f FETCH 1 (" + atts + b")\r\n", b"f")
    assert lines[-1].startswith(b"f NO [LIMIT]") and total < 1000
    sock.close()


def test_fetch_output_is_streamed_so_memory_does_not_grow_with_it(imap, big_message):
    sock, reader = open_raw(imap.ports[0])
    login(sock, reader)
    sock.sendall(b"s SELECT INBOX\r\n")
    until_tag(reader, b"s")
    atts = b" ".join(b"BODY.PEEK[]<%d.1000000>" % i for i in range(30))  # 30 MB of output
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


# --- time and connection limits, TLS ------------------------------------------------------------


def test_noop_before_login_does_not_extend_the_login_deadline(start_imap, mailbox):
    listener = start_imap(config_overrides={"preauth_timeout": 1.0})
    sock, reader = open_raw(listener.ports[0])
    started = time.monotonic()
    bye = None
    for i in range(20):
        sock.sendall(b"n%d NOOP\r\nc%d CAPABILITY\r\n" % (i, i))
        time.sleep(0.2)
        sock.settimeout(0.1)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        if b"* BYE Autologout" in data or not data:
            bye = time.monotonic() - started
            break
    assert bye is not None and bye < 2.5
    sock.close()


def test_connection_limits_hold_before_the_tls_handshake(start_imap, mailbox, client_tls):
    listener = start_imap(config_overrides={"max_connections_per_ip": 2})
    port = listener.ports[1]
    half_open = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
    time.sleep(0.2)
    extra = socket.create_connection(("127.0.0.1", port), timeout=5)
    assert extra.recv(100) == b""  # closed at once, no handshake started
    extra.close()
    for sock in half_open:
        sock.close()
    time.sleep(0.3)
    client = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=client_tls, timeout=10)
    client.login(ADDRESS, PASSWORD)
    client.logout()


def test_client_side_tls_aborts_are_one_quiet_line(imap, client_tls, caplog):
    caplog.set_level(logging.DEBUG)
    port_tls = imap.ports[1]
    plain = socket.create_connection(("127.0.0.1", port_tls), timeout=5)  # not TLS at all
    plain.sendall(b"a LOGIN x y\r\n" * 10)
    plain.recv(100)
    plain.close()
    raw = socket.create_connection(("127.0.0.1", port_tls), timeout=5)
    tls = client_tls.wrap_socket(raw, server_hostname="127.0.0.1", do_handshake_on_connect=False)
    tls.do_handshake()
    assert tls.recv(100).startswith(b"* OK")
    forger = socket.socket(fileno=os.dup(tls.fileno()))
    forger.sendall(b"\x17\x03\x03\x00\x20" + os.urandom(32))  # a forged record
    try:
        tls.recv(100)
    except (ssl.SSLError, OSError):
        pass
    forger.close()
    tls.close()
    sock, reader = open_raw(imap.ports[0])  # STARTTLS, then a dropped connection
    sock.sendall(b"s STARTTLS\r\n")
    assert reader.readline().startswith(b"s OK")
    sock.sendall(b"\x16\x03\x01\x00\x05hello")
    sock.close()
    time.sleep(1.0)
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert not noisy, [(r.name, r.getMessage()) for r in noisy]
    quiet = [r for r in caplog.records if r.name == "correio.imap"]
    assert 1 <= len(quiet) <= 3, [r.getMessage() for r in quiet]


def test_a_hostile_list_does_not_stall_another_connection(imap, mailbox):
    for i in range(200):
        folders.create_folder(mailbox, f"F{i:03d}/" + "x" * 300)
    client = logged_in(imap.ports[0])
    delays = []

    def other():
        for _ in range(10):
            started = time.monotonic()
            sock = socket.create_connection(("127.0.0.1", imap.ports[0]), timeout=10)
            sock.makefile("rb").readline()
            delays.append(time.monotonic() - started)
            sock.close()

    thread = threading.Thread(target=other)
    thread.start()
    for _ in range(5):
        assert client.list('""', '"' + "*%" * 200 + 'x"')[0] == "OK"
    thread.join()
    client.logout()
    assert max(delays) < 0.5, delays
