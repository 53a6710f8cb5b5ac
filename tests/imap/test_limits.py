"""Bounded work: over-limit input gets the protocol's error (tagged NO/BAD or BYE), never a crash
or a hang; failed logins go through the shared throttle; idle sessions are logged out."""

import imaplib
import socket
import time

import pytest
from django.test import override_settings

from mailcore.models import Message
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


def test_an_overlong_line_ends_the_connection_with_bye(start_imap, mailbox):
    listener = start_imap(max_line=1000)
    sock, reader = open_raw(listener.ports[0])
    sock.sendall(b"a NOOP " + b"x" * 5000 + b"\r\n")
    assert reader.readline().startswith(b"* BYE Line too long")
    assert reader.readline() == b""
    sock.close()


def test_a_too_large_synchronizing_literal_is_refused_and_the_session_goes_on(
    start_imap, mailbox
):
    listener = start_imap(max_literal=100)
    sock, reader = open_raw(listener.ports[0])
    sock.sendall(b"a LOGIN {1000}\r\n")
    assert reader.readline().startswith(b"a NO [TOOBIG]")
    sock.sendall(b"b NOOP\r\n")
    assert reader.readline().startswith(b"b OK")
    sock.sendall(b"c LOGIN {1000+}\r\n")
    assert reader.readline().startswith(b"* BYE [TOOBIG]")
    sock.close()


def test_append_over_the_message_size_limit_is_toobig(start_imap, mailbox):
    listener = start_imap(config_overrides={"max_message_size": 2000})
    client = imaplib.IMAP4("127.0.0.1", listener.ports[0], timeout=10)
    client.login(ADDRESS, PASSWORD)
    assert b"APPENDLIMIT=2000" in client.capability()[1][0]
    typ, data = client.append("INBOX", None, None, make_message(body="x" * 5000))
    assert typ == "NO" and b"TOOBIG" in data[0]
    assert client.append("INBOX", None, None, make_message())[0] == "OK"
    assert Message.objects.count() == 1
    client.logout()


def test_deep_nesting_and_garbage_are_bad_not_crashes(imap):
    sock, reader = open_raw(imap.ports[0])
    login(sock, reader)
    sock.sendall(b"s SELECT INBOX\r\n")
    until_tag(reader, b"s")
    sock.sendall(b"a SEARCH " + b"(" * 500 + b"ALL" + b")" * 500 + b"\r\n")
    assert until_tag(reader, b"a")[-1].startswith(b"a BAD")
    sock.sendall(b'b FETCH 1 (BODY[1.2.3.4.5.6.7.8.9.10.11.12]<0.0>)\r\n')
    assert until_tag(reader, b"b")[-1].startswith(b"b BAD")
    sock.sendall(b"\x00\xff\xfe garbage\r\n")
    assert reader.readline().startswith(b"* BAD")
    # A name that is not modified UTF-7 matches nothing (imaptest's atoms script: not a BAD).
    sock.sendall(b'c LIST "" "\xff\xfe"\r\n')
    assert until_tag(reader, b"c") == [b"c OK LIST completed\r\n"]
    sock.sendall(b"d NOOP\r\n")
    assert until_tag(reader, b"d")[-1].startswith(b"d OK")
    sock.close()


def test_huge_sequence_sets_are_answered_without_allocating_per_number(imap, mailbox):
    from mailcore.services import delivery

    delivery.deliver_to_mailboxes(make_message(), [mailbox.pk])
    client = imaplib.IMAP4("127.0.0.1", imap.ports[0], timeout=10)
    client.login(ADDRESS, PASSWORD)
    client.select("INBOX")
    started = time.monotonic()
    typ, data = client.uid("FETCH", "1:4294967295", "(FLAGS)")
    assert typ == "OK" and data[0].startswith(b"1 (UID 1")
    typ, data = client.uid("SEARCH", "UID", "1:4294967295,7:4000000000")
    assert data == [b"1"]
    typ, data = client.uid("STORE", "1:4294967295", "+FLAGS", "(\\Seen)")
    assert typ == "OK"
    assert time.monotonic() - started < 2
    with pytest.raises(imaplib.IMAP4.error, match="sequence"):
        client.fetch("1:4294967295", "(FLAGS)")  # message numbers beyond the count are BAD
    client.logout()


def test_too_many_bad_commands_end_the_session(start_imap, mailbox):
    listener = start_imap(max_bad_commands=3)
    sock, reader = open_raw(listener.ports[0])
    sock.sendall(b"a FROB\r\nb FROB\r\nc FROB\r\n")
    lines = [reader.readline() for _ in range(4)]
    assert lines[-1].startswith(b"* BYE")
    sock.close()


def test_failed_logins_are_cut_off_per_connection_and_throttled_across_them(imap, mailbox):
    sock, reader = open_raw(imap.ports[0])
    for i in range(5):
        sock.sendall(f"a{i} LOGIN {ADDRESS} wrong\r\n".encode())
        lines = until_tag(reader, f"a{i}".encode())
    assert any(line.startswith(b"* BYE Too many failed logins") for line in lines)
    sock.close()
    with override_settings(CORREIO_AUTH_MAX_FAILURES=5):
        client = imaplib.IMAP4("127.0.0.1", imap.ports[0], timeout=10)
        with pytest.raises(imaplib.IMAP4.error, match="UNAVAILABLE"):
            client.login(ADDRESS, PASSWORD)  # even the right password waits out the window


def test_idle_connections_are_logged_out(start_imap, mailbox):
    listener = start_imap(config_overrides={"preauth_timeout": 0.5}, autologout=1.0)
    sock, reader = open_raw(listener.ports[0])
    assert reader.readline().startswith(b"* BYE Autologout")
    sock.close()
    sock, reader = open_raw(listener.ports[0])
    login(sock, reader)
    sock.sendall(b"i SELECT INBOX\r\n")
    until_tag(reader, b"i")
    sock.sendall(b"j IDLE\r\n")
    assert reader.readline().startswith(b"+ idling")
    started = time.monotonic()
    assert reader.readline().startswith(b"* BYE Autologout")
    assert time.monotonic() - started < 5
    sock.close()


def test_connections_per_ip_are_limited(start_imap, mailbox):
    listener = start_imap(config_overrides={"max_connections_per_ip": 2})
    first = open_raw(listener.ports[0])
    second = open_raw(listener.ports[0])
    sock = socket.create_connection(("127.0.0.1", listener.ports[0]), timeout=10)
    assert sock.makefile("rb").readline().startswith(b"* BYE Too many connections")
    sock.close()
    first[1].close()
    first[0].close()
    time.sleep(0.3)
    third = open_raw(listener.ports[0])
    for conn in (second, third):
        conn[0].close()
