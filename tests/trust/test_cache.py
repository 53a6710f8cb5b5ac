"""The caches of sender authentication, against real dnsmasq servers of their own: DNS answers
are reused within their TTL and not after it (nor at all with TTL 0); the cache-only mode the
MX tries first never waits on the network; a DKIM key record is parsed once."""

import time

import dkim
import pytest

from mailcore.trust.config import TrustConfig
from mailcore.trust.dns import DnsTempError, Resolver
from mailcore.trust.verify import SmtpFacts, verify_inbound
from tests.trust.conftest import SELECTOR, message
from tests.trust.dnsserver import DnsServer, Zone


def test_answers_are_reused_within_their_ttl_and_not_after():
    server = DnsServer(Zone(txt=[("cached.test", "v=spf1 -all")]), ttl=2)
    try:
        address = server.address
        assert Resolver((address,), 2).txt("cached.test") == [b"v=spf1 -all"]
    finally:
        server.stop()
    # The server is gone: the answer comes from the cache, even in cache-only mode.
    assert Resolver((address,), 1).txt("cached.test") == [b"v=spf1 -all"]
    only = Resolver((address,), 1, cache_only=True)
    assert only.txt("cached.test") == [b"v=spf1 -all"] and not only.missed
    time.sleep(2.2)
    with pytest.raises(DnsTempError):
        Resolver((address,), 0.5).txt("cached.test")


def test_ttl_zero_is_never_cached_and_cache_only_never_asks():
    server = DnsServer(Zone(txt=[("fresh.test", "v=spf1 -all")]), ttl=0)
    try:
        address = server.address
        only = Resolver((address,), 2, cache_only=True)
        with pytest.raises(DnsTempError):
            only.txt("fresh.test")
        assert only.missed
        assert Resolver((address,), 2).txt("fresh.test") == [b"v=spf1 -all"]
    finally:
        server.stop()
    with pytest.raises(DnsTempError):
        Resolver((address,), 0.5).txt("fresh.test")


def test_cache_only_verification_agrees_with_the_full_one_once_answers_are_cached(trust_dns):
    records = [("cachepass.test", "v=spf1 ip4:127.0.0.1 -all"),
               ("_dmarc.cachepass.test", "v=DMARC1; p=reject")]
    from tests.trust.conftest import new_key

    pem, public = new_key()
    records.append((f"{SELECTOR}._domainkey.cachepass.test", f"v=DKIM1; k=rsa; p={public}"))
    server = DnsServer(Zone(txt=records), ttl=60)
    try:
        config = TrustConfig(nameservers=(server.address,), dns_timeout=2)
        raw = message("a@cachepass.test")
        raw = dkim.sign(raw, SELECTOR.encode(), b"cachepass.test", pem,
                        include_headers=[b"from", b"to", b"subject", b"date"]) + raw
        facts = SmtpFacts("127.0.0.1", "client.remote.test", "a@cachepass.test",
                          ("demo@example.test",), "mail.example.test")
        assert verify_inbound(facts, raw, config, cache_only=True).cache_missed
        full = verify_inbound(facts, raw, config)
        assert full.dmarc.result == "pass" and not full.cache_missed
        parsed = dkim.evaluate_pk.cache_info().hits
        # The session's HELO result is reused as the MX does (its name has no SPF record, and
        # a negative answer without SOA is not cached, RFC 2308 §5).
        cached = verify_inbound(facts, raw, config, full.spf_helo, cache_only=True)
        assert not cached.cache_missed
        assert cached.header == full.header
        assert dkim.evaluate_pk.cache_info().hits == parsed + 1  # the key was not parsed again
    finally:
        server.stop()


@pytest.mark.django_db(transaction=True)
def test_the_mx_verifies_from_cache_without_the_resolver(settings, start_smtp, local):
    import smtplib

    from mailcore.models import Message
    from mailcore.trust.hook import forget_cached
    from tests.trust.conftest import new_key

    pem, public = new_key()
    server = DnsServer(Zone(txt=[
        ("mxcache.test", "v=spf1 ip4:127.0.0.1 -all"),
        ("_dmarc.mxcache.test", "v=DMARC1; p=reject"),
        (f"{SELECTOR}._domainkey.mxcache.test", f"v=DKIM1; k=rsa; p={public}"),
    ]), ttl=60)
    forget_cached()
    settings.CORREIO_SENDER_AUTH = True
    settings.CORREIO_DNS_NAMESERVERS = [server.address]
    settings.CORREIO_DNS_TIMEOUT = 1
    settings.CORREIO_RSPAMD_URL = ""
    port = start_smtp().port

    def signed(subject: str) -> bytes:
        raw = message("a@mxcache.test", subject=subject)
        return dkim.sign(raw, SELECTOR.encode(), b"mxcache.test", pem,
                         include_headers=[b"from", b"to", b"subject", b"date"]) + raw

    try:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="client.remote.test") as client:
            client.sendmail("a@mxcache.test", ["demo@example.test"], signed("first"))
            server.stop()  # from now on only the cache can answer
            client.sendmail("a@mxcache.test", ["demo@example.test"], signed("second"))
    finally:
        server.stop()
    from mailcore.blobstore import load_blob

    stored = {m.subject: load_blob(m.blob_id) for m in
              Message.objects.filter(mailbox__address="demo@example.test")}
    assert set(stored) == {"first", "second"}
    for raw in stored.values():
        assert b"dmarc=pass (p=reject) header.from=mxcache.test" in raw
