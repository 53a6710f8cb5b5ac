"""Lookalike senders: the pure check (names, confusable and IDNA domains, edit distance), and
end to end: the user has written to Alice; mail imitating her arrives over the MX (a real
client) and the webmail reader shows a plain warning, while Alice's own mail shows none."""

import time

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

    start = time.perf_counter()
    find_lookalike("Nobody Known", "x@unrelated-domain.test", many, ["example.test"])
    assert time.perf_counter() - start < 0.5


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
