"""Per-user allow and block lists: the service's matching, and their effect at the MX."""

import pytest
from django.core.exceptions import ValidationError

from mailcore.models import InboundVerdict, Message, SenderRule
from mailcore.services.sender_rules import add_sender_rule, remove_sender_rule, rules_for
from tests.trust.conftest import message
from tests.trust.test_mx import send


@pytest.mark.django_db
def test_an_address_rule_beats_its_domain_and_domains_cover_subdomains(mailbox):
    add_sender_rule(mailbox, "remote.test", SenderRule.BLOCK)
    add_sender_rule(mailbox, "Friend@Remote.test", SenderRule.ALLOW)
    assert rules_for([mailbox.pk], ["friend@remote.test"]) == {mailbox.pk: "allow"}
    assert rules_for([mailbox.pk], ["other@mail.remote.test"]) == {mailbox.pk: "block"}
    assert rules_for([mailbox.pk], ["x@elsewhere.test"]) == {}
    # The envelope and the From disagree at the same level: blocking wins.
    add_sender_rule(mailbox, "foe@remote.test", SenderRule.BLOCK)
    assert rules_for([mailbox.pk], ["friend@remote.test", "foe@remote.test"]) == {
        mailbox.pk: "block"}
    rule = SenderRule.objects.get(pattern="foe@remote.test")
    assert remove_sender_rule(mailbox, rule.pk)


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["", "not a domain", "a@", "@", "x" * 300, "a@b@c.test"])
def test_bad_patterns_are_refused(mailbox, bad):
    with pytest.raises(ValidationError):
        add_sender_rule(mailbox, bad, SenderRule.BLOCK)


@pytest.fixture
def mx(sender_auth, start_smtp, local):
    return start_smtp().port


def where(address: str) -> list[str]:
    return [m.folder.role for m in Message.objects.filter(mailbox__address=address)
            .select_related("folder")]


@pytest.mark.django_db(transaction=True)
def test_a_sender_blocked_by_its_only_recipient_is_refused(mx, local):
    add_sender_rule(local["demo"], "nodmarc.test", SenderRule.BLOCK)
    code, text = send(mx, "x@nodmarc.test", message("x@nodmarc.test"))
    assert code == 550 and "does not accept mail from this sender" in text
    assert where("demo@example.test") == []


@pytest.mark.django_db(transaction=True)
def test_a_blocked_sender_goes_to_the_blockers_junk_and_the_others_inbox(mx, local):
    import smtplib

    add_sender_rule(local["demo"], "x@nodmarc.test", SenderRule.BLOCK)
    with smtplib.SMTP("127.0.0.1", mx, timeout=30) as client:
        client.sendmail("x@nodmarc.test", ["demo@example.test", "alice@example.test"],
                        message("x@nodmarc.test"))
    assert where("demo@example.test") == ["junk"]
    assert where("alice@example.test") == ["inbox"]
    assert "you blocked this sender" in InboundVerdict.objects.get().reasons


@pytest.mark.django_db(transaction=True)
def test_allowing_a_sender_does_not_let_a_spoofer_past_junk(mx, local):
    add_sender_rule(local["demo"], "quarantine.test", SenderRule.ALLOW)
    assert send(mx, "x@quarantine.test", message("x@quarantine.test"))[0] == 250
    assert where("demo@example.test") == ["junk"]


@pytest.mark.django_db
def test_the_settings_page_adds_lists_and_removes_sender_rules(mailbox):
    from django.test import Client

    from tests.conftest import PASSWORD

    web = Client()
    assert web.post("/login/", {"address": mailbox.address, "password": PASSWORD}
                    ).status_code == 302
    response = web.post("/settings/", {"form": "sender-rule", "pattern": "spam.test",
                                       "kind": "block"})
    assert response.status_code == 302
    page = web.get("/settings/").content.decode()
    assert "Block: spam.test" in page
    bad = web.post("/settings/", {"form": "sender-rule", "pattern": "not a domain",
                                  "kind": "allow"})
    assert bad.status_code == 400 and 'id="rule-error"' in bad.content.decode()
    rule = SenderRule.objects.get(mailbox=mailbox)
    web.post("/settings/", {"form": "sender-rule-remove", "rule": str(rule.pk)})
    assert not SenderRule.objects.exists()
