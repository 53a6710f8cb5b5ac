"""Lookalike senders: the pure check (names, confusable and IDNA domains, edit distance), and
end to end: the user has written to Alice; mail imitating her arrives over the MX (a real
client) and the webmail reader shows a plain warning, while Alice's own mail shows none."""


import pytest
from django.test import Client

from mailcore.models import Folder, FolderRole, Message
from mailcore.services.delivery import append_message
from mailcore.trust.lookalike import edit_distance, find_lookalike, skeleton
from tests.conftest import PASSWORD
from tests.factories import make_message
from tests.trust.test_mx import send

KNOWN = [("alice@partner.test", "Alice Martin"), ("bob@bank.example", "Bob")]


@pytest.mark.parametrize(("name", "address"), [
    ("Alice Martin", "alice.martin@freemail.test"),  # her name, another address
    ("ALICE   martin", "x@evil.test"),  # case and spacing
    ("\u0410lice Martin", "x@evil.test"),  # Cyrillic A
    ("alice@partner.test", "x@evil.test"),  # a known address as the display name
    ("Someone", "alice@partnr.test"),  # one letter dropped
    ("Someone", "alice@pratner.test"),  # two letters swapped
    ("Someone", "alice@partner.tesf"),
    ("Someone", "a@p\u03b1rtner.test"),  # Greek alpha
    ("Someone", "a@xn--prtner-pxe.test"),  # the same, as IDNA
    ("Someone", "b@bank.examp1e"),  # digit one for l
    ("Someone", "boss@examp1e.test"),  # the user's own domain imitated
])
def test_lookalikes_are_warned_about(name, address):
    assert find_lookalike(name, address, KNOWN, ["example.test"])


@pytest.mark.parametrize(("name", "address"), [
    ("Alice Martin", "alice@partner.test"),  # herself
    ("Someone", "ALICE@partner.test"),
    ("Bob", "bob@bank.example"),
    ("Carol", "carol@partner.test"),  # a colleague of a known domain
    ("Jo", "jo@elsewhere.test"),  # short names match nothing
    ("Dave", "dave@gmx.test"),  # unrelated
    ("", "not an address"),
    ("Someone", "x@example.test"),  # the user's own domain
])
def test_ordinary_senders_are_not(name, address):
    assert find_lookalike(name, address, KNOWN, ["example.test"]) is None


def test_the_check_is_bounded():
    many = [(f"user{i}@domain{i}.test", f"Person {i}") for i in range(5000)]
    assert edit_distance("a" * 300, "b" * 300, 2) == 3
    assert edit_distance("example", "exmaple", 2) == 1
    assert skeleton("Ｅxаmple") == "example"

    assert find_lookalike("Nobody Known", "x@unrelated-domain.test", many,
                          ["example.test"]) is None


@pytest.mark.django_db(transaction=True)
def test_the_reader_warns_about_a_lookalike_of_someone_the_user_wrote_to(
        sender_auth, start_smtp, local):
    mx = start_smtp().port
    sent = Folder.objects.get(mailbox__address="demo@example.test", role=FolderRole.SENT)
    append_message(sent, make_message(sender="demo@example.test",
                                      to="Alice Martin <alice@pass.test>", subject="Invoice"))
    web = Client()
    assert web.post("/login/", {"address": "demo@example.test", "password": PASSWORD}
                    ).status_code == 302
    # Alice herself (DKIM-signed, DMARC pass): no warning.
    genuine = sender_auth.sign(make_message(sender="Alice Martin <alice@pass.test>",
                                            subject="genuine").replace(b"\n", b"\r\n")
                               .replace(b"\r\r\n", b"\r\n"), "pass.test")
    assert send(mx, "alice@pass.test", genuine)[0] == 250
    # Her name from a free-mail address, and her domain with one letter changed.
    for sender, subject in (("Alice Martin <alice.martin@nodmarc.test>", "name"),
                            ("Accounts <billing@pas5.test>", "domain")):
        raw = make_message(sender=sender, subject=subject).replace(b"\n", b"\r\n").replace(
            b"\r\r\n", b"\r\n")
        assert send(mx, sender.split("<")[1][:-1], raw)[0] == 250
    pages = {}
    for row in Message.objects.filter(mailbox__address="demo@example.test",
                                      folder__role=FolderRole.INBOX):
        pages[row.subject] = web.get(f"/m/{row.pk}/").content.decode()
    assert "trust-warning" not in pages["genuine"]
    assert 'id="trust-warning"' in pages["name"] and "alice@pass.test" in pages["name"]
    assert 'id="trust-warning"' in pages["domain"] and "looks like pass.test" in pages["domain"]


def _crlf(raw: bytes) -> bytes:
    return raw.replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")


def _send_to(port: int, sender: str, raw: bytes, recipients: list[str]) -> None:
    import smtplib

    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.remote.test", timeout=30) as c:
        c.sendmail(sender, recipients, raw)


@pytest.mark.django_db(transaction=True)
def test_the_lookalike_verdict_is_stored_at_delivery_per_recipient_and_not_judged_again(
        sender_auth, start_smtp, local):
    """demo wrote to Alice, alice@example.test never did: one message imitating Alice, to both,
    is judged per recipient at the MX and kept with the message; the reader shows what was
    kept, so forgetting Alice later does not take the warning away, and a message that arrived
    before demo knew anyone is not warned about afterwards."""
    from mailcore.models import Correspondent, LookalikeVerdict
    from mailcore.trust.hook import forget_cached

    mx = start_smtp().port
    early = _crlf(make_message(sender="Alice Martin <alice.martin@nodmarc.test>",
                               subject="before"))
    _send_to(mx, "alice.martin@nodmarc.test", early, ["demo@example.test"])
    sent = Folder.objects.get(mailbox__address="demo@example.test", role=FolderRole.SENT)
    append_message(sent, make_message(sender="demo@example.test",
                                      to="Alice Martin <alice@pass.test>", subject="Invoice"))
    forget_cached()  # what demo knows is reread at once (the MX reuses it for seconds)
    raw = _crlf(make_message(sender="Alice Martin <alice.martin@nodmarc.test>",
                             to="demo@example.test, alice@example.test", subject="after"))
    _send_to(mx, "alice.martin@nodmarc.test", raw, ["demo@example.test", "alice@example.test"])

    [verdict] = LookalikeVerdict.objects.all()
    assert verdict.mailbox.address == "demo@example.test"
    assert (verdict.kind, verdict.from_addr, verdict.imitated) == (
        "name", "alice.martin@nodmarc.test", "alice@pass.test")
    assert verdict.from_name == "Alice Martin"

    # demo forgets Alice (the Sent message and any learnt correspondent go): nothing is judged
    # again, the stored warning stays; the early message was never warned about and is not now.
    Message.objects.filter(folder=sent).delete()
    Correspondent.objects.all().delete()
    web = Client()
    assert web.post("/login/", {"address": "demo@example.test", "password": PASSWORD}
                    ).status_code == 302
    rows = {row.subject: row for row in Message.objects.filter(
        mailbox__address="demo@example.test", folder__role=FolderRole.INBOX)}
    page = web.get(f"/m/{rows['after'].pk}/").content.decode()
    assert 'id="trust-warning"' in page and "alice@pass.test" in page
    assert "alice.martin@nodmarc.test" in page
    fragment = web.get(f"/m/{rows['after'].pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert 'id="trust-warning"' in fragment
    assert "trust-warning" not in web.get(f"/m/{rows['before'].pk}/").content.decode()

    # alice@example.test knows nobody: her copy of the same message carries no warning.
    other = Client()
    assert other.post("/login/", {"address": "alice@example.test", "password": PASSWORD}
                      ).status_code == 302
    mine = Message.objects.get(mailbox__address="alice@example.test", subject="after")
    assert "trust-warning" not in other.get(f"/m/{mine.pk}/").content.decode()
