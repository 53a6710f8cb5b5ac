"""QUOTA (RFC 9208) and STATUS SIZE/DELETED/DELETED-STORAGE (RFC 8438, RFC 9208 §4.2) against a
real listener with imaplib: the figures come from the one quota rule (services/quota.py)."""

import pytest

from mailcore.models import Mailbox, Message
from mailcore.services import delivery
from tests.factories import make_message

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
