"""``verify_inbound`` against a real DNS server (dnsmasq): SPF, DKIM, DMARC and ARC results,
and a defined result for every hostile input."""

import time

import dkim
import pytest

from mailcore.trust.authresults import strip_ours
from mailcore.trust.config import TrustConfig
from mailcore.trust.verify import SmtpFacts, verify_inbound
from tests.trust.conftest import SELECTOR, message

HOST = "mail.example.test"


def facts(mail_from: str, helo: str = "client.remote.test", ip: str = "127.0.0.1"):
    return SmtpFacts(ip, helo, mail_from, ("demo@example.test",), HOST)


@pytest.fixture
def config(trust_dns):
    return TrustConfig(nameservers=(trust_dns.address,), dns_timeout=2,
                       arc_sealers=frozenset({"lists.test"}))


def test_spf_and_dkim_pass_give_dmarc_pass(trust_dns, config):
    raw = trust_dns.sign(message("a@pass.test"), "pass.test")
    auth = verify_inbound(facts("a@pass.test"), raw, config)
    assert auth.spf_mailfrom.result == "pass"
    assert [d.result for d in auth.dkim] == ["pass"]
    assert auth.dmarc.result == "pass"
    assert auth.header.startswith(b"Authentication-Results: mail.example.test;\r\n\t")
    assert b"dkim=pass header.d=pass.test header.s=sel" in auth.header
    assert b"dmarc=pass (p=reject) header.from=pass.test" in auth.header


def test_a_forged_sender_fails_spf_and_dmarc(trust_dns, config):
    auth = verify_inbound(facts("ceo@reject.test"), message("ceo@reject.test"), config)
    assert auth.spf_mailfrom.result == "fail"
    assert auth.dkim == ()
    assert (auth.dmarc.result, auth.dmarc.policy) == ("fail", "reject")


def test_a_dkim_signature_aligned_with_from_passes_dmarc_whatever_the_envelope(
        trust_dns, config):
    raw = trust_dns.sign(message("news@reject.test"), "reject.test")
    auth = verify_inbound(facts("bounce@nodmarc.test"), raw, config)
    assert auth.spf_mailfrom.result == "fail"
    assert auth.dmarc.result == "pass"


def test_a_body_changed_after_signing_fails_dkim(trust_dns, config):
    raw = trust_dns.sign(message("news@reject.test"), "reject.test").replace(b"Body", b"Bogus")
    auth = verify_inbound(facts("news@reject.test"), raw, config)
    assert [d.result for d in auth.dkim] == ["fail"]
    assert auth.dmarc.result == "fail"


def test_a_signature_by_another_domain_is_not_aligned(trust_dns, config):
    raw = trust_dns.sign(message("ceo@reject.test"), "other.test")
    auth = verify_inbound(facts("ceo@reject.test"), raw, config)
    assert [d.result for d in auth.dkim] == ["pass"]
    assert auth.dmarc.result == "fail"


def test_the_arc_chain_of_a_forwarder_is_verified(trust_dns, config):
    original = trust_dns.sign(message("ceo@reject.test", subject="hi"), "reject.test")
    sealed = trust_dns.seal(original.replace(b"Subject: hi", b"Subject: [list] hi"),
                            "lists.test", "dkim=pass header.d=reject.test; dmarc=pass")
    auth = verify_inbound(facts("list@lists.test"), sealed, config)
    assert auth.dmarc.result == "fail"  # the list changed the subject: DKIM broken
    assert (auth.arc.result, auth.arc.sealer) == ("pass", "lists.test")
    assert b"arc=pass (sealer lists.test)" in auth.header


@pytest.mark.parametrize("domain", ["loop.test", "many.test", "void.test", "twospf.test"])
def test_hostile_spf_records_give_permerror(trust_dns, config, domain):
    auth = verify_inbound(facts(f"x@{domain}"), message(f"x@{domain}"), config)
    assert auth.spf_mailfrom.result == "permerror"
    assert auth.dns_queries <= 25


def test_a_huge_dns_answer_gives_a_defined_result(trust_dns, config):
    auth = verify_inbound(facts("x@huge.test"), message("x@huge.test"), config)
    assert auth.spf_mailfrom.result in ("none", "permerror")
    assert auth.dmarc.result == "fail"


@pytest.mark.parametrize("signature", [
    b"DKIM-Signature: v=1; a=rsa-sha256; d=badkey.test; s=sel; h=from; bh=AAAA; b=AAAA\r\n",
    b"DKIM-Signature: garbage without tags\r\n",
    b"DKIM-Signature: v=1; a=rsa-sha256; d=; s=; h=; bh=; b=\r\n",
    b"DKIM-Signature: v=1; a=rsa-sha999; d=pass.test; s=sel; h=from; bh=!!; b=!!\r\n",
    b"DKIM-Signature: v=1; d=pass.test; s=../../etc; h=from; bh=AA==; b=AA==\r\n",
    b"DKIM-Signature: v=1; a=rsa-sha256; d=pass.test; s=sel; l=99999999; h=from; bh=AA==;"
    b" b=" + b"A" * 20000 + b"\r\n",
])
def test_malformed_signatures_give_a_defined_result(trust_dns, config, signature):
    auth = verify_inbound(facts("x@badkey.test"), signature + message("x@badkey.test"), config)
    assert [d.result for d in auth.dkim] in (["permerror"], ["fail"])
    assert auth.dmarc.result == "fail"


def test_a_stack_of_signatures_is_checked_up_to_a_limit(trust_dns, config):
    raw = message("a@pass.test")
    for _ in range(20):
        raw = trust_dns.sign(raw, "pass.test")
    auth = verify_inbound(facts("a@pass.test"), raw, config)
    assert len(auth.dkim) == 8


def test_a_silent_resolver_costs_the_budget_and_gives_temperror(silent_resolver):
    config = TrustConfig(nameservers=(silent_resolver.address,), dns_timeout=1)
    start = time.monotonic()
    auth = verify_inbound(facts("a@pass.test"), message("a@pass.test"), config)
    assert time.monotonic() - start < 1.5
    assert auth.spf_mailfrom.result == "temperror"
    assert auth.dmarc.result == "temperror"


def test_forged_results_of_ours_are_removed_and_others_kept():
    raw = (b"Authentication-Results: MAIL.example.test; dmarc=pass\r\n"
           b"Authentication-Results: (comment) mail.example.test;\r\n\tdkim=pass\r\n"
           b"Authentication-Results: mx.other.test; spf=pass\r\n"
           b"Subject: Authentication-Results: mail.example.test\r\n\r\n"
           b"Authentication-Results: mail.example.test; body stays\r\n")
    assert strip_ours(raw, HOST) == (
        b"Authentication-Results: mx.other.test; spf=pass\r\n"
        b"Subject: Authentication-Results: mail.example.test\r\n\r\n"
        b"Authentication-Results: mail.example.test; body stays\r\n")


def _sign_leaving_out_from(raw: bytes, domain: str, pem: bytes) -> bytes:
    """A valid signature whose h= omits From: dkimpy refuses to make one (RFC 6376 §5.4), so
    it is put together here from dkimpy's own parts, as a signer that ignores the rule would."""
    import base64
    import hashlib

    from dkim.canonicalization import CanonicalizationPolicy
    from dkim.crypto import parse_pem_private_key

    signer = dkim.DKIM(raw)
    policy = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
    body_hash = base64.b64encode(hashlib.sha256(policy.canonicalize_body(signer.body)).digest())
    signer.signature_algorithm = b"rsa-sha256"
    signer.hasher = hashlib.sha256
    fields = [(b"v", b"1"), (b"a", b"rsa-sha256"), (b"c", b"relaxed/relaxed"),
              (b"d", domain.encode()), (b"s", SELECTOR.encode()), (b"h", b"to : subject"),
              (b"bh", body_hash), (b"b", b"0" * 60)]
    value = signer.gen_header(fields, (b"to", b"subject"), policy, b"DKIM-Signature",
                              parse_pem_private_key(pem))
    return b"DKIM-Signature: " + value + raw


def test_a_valid_signature_that_leaves_from_out_does_not_vouch_for_from(trust_dns, config):
    """RFC 6376 §6.1.1: PERMFAIL. Otherwise whoever holds one such message of pass.test could
    write any pass.test address into From and pass DMARC; dkimpy alone says it is valid."""
    raw = _sign_leaving_out_from(message("ceo@pass.test"), "pass.test", trust_dns.keys["pass.test"])
    from mailcore.trust.dns import Resolver
    from mailcore.trust.signatures import _dnsfunc

    assert dkim.DKIM(raw).verify(dnsfunc=_dnsfunc(Resolver(config.nameservers, 2)))
    forged = facts("ceo@elsewhere.test")
    auth = verify_inbound(forged, raw, config)
    assert [d.result for d in auth.dkim] == ["permerror"]
    assert auth.dmarc.result == "fail" and auth.dmarc.policy == "reject"


def test_a_signature_over_part_of_the_body_does_not_pass(trust_dns, config):
    """RFC 6376 §8.2: l= lets anyone append to the body; what was appended must not be shown
    as the signer's."""
    raw = message("a@pass.test")
    signed = dkim.sign(raw, SELECTOR.encode(), b"pass.test", trust_dns.keys["pass.test"],
                       include_headers=[b"from", b"to", b"subject"], length=True) + raw
    auth = verify_inbound(facts("a@elsewhere.test"), signed, config)
    assert [d.result for d in auth.dkim] == ["pass"]  # covers the whole body: fine
    appended = signed + b"\r\nPlease pay the new account: XX00 0000 0000.\r\n"
    auth = verify_inbound(facts("a@elsewhere.test"), appended, config)
    assert [d.result for d in auth.dkim] == ["policy"]
    assert auth.dmarc.result == "fail"
    assert b"dkim=policy header.d=pass.test" in auth.header


@pytest.mark.parametrize("domain", ["redirloop.test", "deep.test", "mxmany.test"])
def test_more_hostile_spf_records_give_permerror(trust_dns, config, domain):
    """A redirect loop, an include chain deeper than the 10 look-ups, and an "mx" naming more
    than 10 hosts (RFC 7208 §4.6.4)."""
    auth = verify_inbound(facts(f"x@{domain}"), message(f"x@{domain}"), config)
    assert auth.spf_mailfrom.result == "permerror"
    assert auth.dns_queries <= 25


def test_forged_results_in_quoted_or_rooted_form_are_removed_too():
    raw = (b'Authentication-Results: "mail.example.test"; dmarc=pass\r\n'
           b"Authentication-Results: mail.example.test.; dkim=pass\r\n"
           b"Authentication-Results: mail.example.test 1; spf=pass\r\n"
           b'Authentication-Results: "mail.example.test.other"; spf=pass\r\n'
           b"Subject: hi\r\n\r\nbody\r\n")
    assert strip_ours(raw, HOST) == (
        b'Authentication-Results: "mail.example.test.other"; spf=pass\r\n'
        b"Subject: hi\r\n\r\nbody\r\n")
