"""QUOTA (RFC 9208), STATUS SIZE/DELETED/DELETED-STORAGE (RFC 8438, RFC 9208 §4.2) and
COMPRESS=DEFLATE (RFC 4978) against a real listener with imaplib and raw sockets: quota figures
come from the one quota rule (services/quota.py); a compression bomb stays within the limits."""

import tracemalloc
import zlib

import pytest

from mailcore.models import Mailbox, Message
from mailcore.services import delivery
from tests.factories import make_message
from tests.imap.test_hostile import login, open_raw

pytestmark = pytest.mark.django_db(transaction=True)


def test_quota_root_and_usage_follow_the_mailbox_quota(connect, mailbox):
    raw = make_message(body="x" * 5000 + "\n")
    delivery.deliver_to_mailboxes(raw, [mailbox.pk])
    client = connect()
    assert {"QUOTA", "QUOTA=RES-STORAGE"} <= set(client.capability()[1][0].decode().split())
    Mailbox.objects.filter(pk=mailbox.pk).update(quota=0)
    typ, data = client.getquotaroot("INBOX")
    assert typ == "OK" and data[0] == [b'"INBOX"'] and data[1] == [None]
    assert client.getquota('""')[0] == "NO"
    Mailbox.objects.filter(pk=mailbox.pk).update(quota=10 * 1024 * 1024)
    used_kib = (Mailbox.objects.get(pk=mailbox.pk).used_bytes + 1023) // 1024
    typ, data = client.getquotaroot("INBOX")
    assert data == [[b'"INBOX" ""'], [f'"" (STORAGE {used_kib} 10240)'.encode()]]
    assert client.getquota('""')[1] == [f'"" (STORAGE {used_kib} 10240)'.encode()]
    typ, data = client.setquota('""', "(STORAGE 1)")
    assert typ == "NO" and b"NOPERM" in data[0]
    typ, data = client.getquotaroot("Nowhere")
    assert typ == "NO"


def test_status_size_and_deleted(connect, mailbox):
    raws = [make_message(subject=f"s{i}", body="y" * (1000 * (i + 1)) + "\n") for i in range(3)]
    for raw in raws:
        delivery.deliver_to_mailboxes(raw, [mailbox.pk])
    Message.objects.filter(uid=2).update(deleted=True)
    client = connect()
    typ, data = client.status("INBOX", "(MESSAGES SIZE DELETED DELETED-STORAGE)")
    total = sum(map(len, raws))
    deleted_kib = (len(raws[1]) + 1023) // 1024
    assert data == [f'"INBOX" (MESSAGES 3 SIZE {total} DELETED 1 '
                    f'DELETED-STORAGE {deleted_kib})'.encode()]


class _Deflated:
    """A raw-socket client speaking through COMPRESS=DEFLATE (RFC 4978)."""

    def __init__(self, sock):
        self.sock = sock
        self.deflater = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self.pending = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(self.deflater.compress(data) + self.deflater.flush(zlib.Z_SYNC_FLUSH))

    def until_tag(self, tag: bytes) -> bytes:
        while not any(line.startswith(tag + b" ") or line.startswith(b"* BYE")
                      for line in self.pending.split(b"\r\n")):
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            self.pending += self.inflater.decompress(chunk)
        out, self.pending = self.pending, b""
        return out


def _compressed_session(port):
    sock, reader = open_raw(port)
    login(sock, reader)
    sock.sendall(b"z COMPRESS DEFLATE\r\n")
    assert reader.readline() == b"z OK DEFLATE active\r\n"
    return sock, _Deflated(sock)


def test_compress_deflate_carries_commands_literals_and_responses(imap, mailbox):
    raw = make_message(subject="compressed", body="zip " * 5000 + "\n")
    sock, client = _compressed_session(imap.ports[0])
    client.send(b"a APPEND INBOX {%d+}\r\n" % len(raw) + raw + b"\r\n")
    assert b"a OK [APPENDUID" in client.until_tag(b"a")
    client.send(b"b SELECT INBOX\r\nc FETCH 1 BODY.PEEK[]\r\nd COMPRESS DEFLATE\r\n")
    out = client.until_tag(b"d")
    assert b"* 1 EXISTS" in out and raw in out and b"c OK" in out
    assert b"d NO [COMPRESSIONACTIVE]" in out
    client.send(b"e LOGOUT\r\n")
    assert b"* BYE" in client.until_tag(b"e")
    sock.close()


def test_a_compression_bomb_is_refused_within_the_line_limit(start_imap, mailbox):
    listener = start_imap(max_line=8192)
    sock, client = _compressed_session(listener.ports[0])
    tracemalloc.start()
    try:
        # 200 MB of one letter deflates to about 200 KB: the line limit ends it at 8 KiB.
        try:
            for _ in range(200):
                client.send(b"a" * 1_000_000)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server has had enough: it said why and closed
        out = client.until_tag(b"never")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert b"* BYE Line too long" in out
    assert peak < 20 * 1024 * 1024
    sock.close()


def test_within_younger_and_older_use_the_internal_date(connect, mailbox):
    from datetime import timedelta

    from django.utils import timezone

    for subject in ("old", "new"):
        delivery.deliver_to_mailboxes(make_message(subject=subject), [mailbox.pk])
    Message.objects.filter(uid=1).update(internal_date=timezone.now() - timedelta(days=3))
    client = connect()
    assert "WITHIN" in client.capability()[1][0].decode().split()
    client.select("INBOX")
    assert client.search(None, "YOUNGER", "3600")[1] == [b"2"]
    assert client.search(None, "OLDER", "3600")[1] == [b"1"]
    assert client.uid("SEARCH", "OR", "YOUNGER", "60", "SUBJECT", "old")[1] == [b"1 2"]
