"""From identities with their own names and signatures (issue 17, part 5)."""

import email
from email import policy

from mailcore.blobstore import load_blob
from mailcore.models import Alias, OutboundMessage
from tests.webmail.test_compose import new, send
from webmail.models import Composition, Identity, WebmailSettings


def _alias(mailbox):
    Alias.objects.create(domain=mailbox.domain, local_part="sales", destinations=mailbox.address)


def test_each_address_gets_its_name_and_signature_in_compose_and_in_what_is_sent(web, mailbox):
    _alias(mailbox)
    WebmailSettings.objects.create(mailbox=mailbox, signature="General sig",
                                   default_identity="sales@example.test")
    page = web.get("/settings/").content.decode()
    assert 'data-address="demo@example.test"' in page and 'data-address="sales@example.test"' in page
    response = web.post("/settings/identity/", {"address": "sales@example.test",
                                                "display_name": "ACME Sales",
                                                "signature": "Sales team\r\nACME",
                                                "signature_html": "<b>Sales</b> team"})
    assert response.status_code == 302
    cid = new(web)
    composition = Composition.objects.get(pk=cid)
    assert composition.from_addr == "sales@example.test"
    assert composition.body.endswith("-- \nSales team\nACME\n")
    html = web.get(f"/compose/{cid}/").content.decode()
    assert "ACME Sales &lt;sales@example.test&gt;" in html
    send(web, cid, from_addr="sales@example.test", to="bob@remote.test", subject="Offer",
         body="Hi\n")
    out = email.message_from_bytes(load_blob(OutboundMessage.objects.get().blob_id),
                                   policy=policy.default)
    assert out["From"].addresses[0].display_name == "ACME Sales"
    # The mailbox's own address keeps the general signature.
    WebmailSettings.objects.filter(mailbox=mailbox).update(default_identity="")
    own = Composition.objects.get(pk=new(web))
    assert own.from_addr == "demo@example.test" and own.body.endswith("-- \nGeneral sig\n")


def test_rich_text_uses_the_html_signature(web, mailbox):
    _alias(mailbox)
    WebmailSettings.objects.create(mailbox=mailbox, compose_html=True,
                                   default_identity="sales@example.test")
    web.post("/settings/identity/", {"address": "sales@example.test", "display_name": "",
                                     "signature": "plain", "signature_html": "<b>Bold</b> sig"})
    composition = Composition.objects.get(pk=new(web))
    assert "<p>-- <br><b>Bold</b> sig</p>" in composition.body_html


def test_someone_elses_address_or_a_script_is_refused(web, mailbox):
    response = web.post("/settings/identity/", {"address": "boss@example.test",
                                                "display_name": "Boss", "signature": "",
                                                "signature_html": ""}, follow=True)
    assert "That is not one of your addresses." in response.content.decode()
    response = web.post("/settings/identity/", {"address": "demo@example.test",
                                                "display_name": "", "signature": "",
                                                "signature_html": "<script>x()</script>"},
                        follow=True)
    assert "which cannot be sent in mail" in response.content.decode()
    assert not Identity.objects.exists()
