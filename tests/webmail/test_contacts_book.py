"""The address book (issue 17, part 3): vCard 4 reader/writer, the contacts service, its page,
autocomplete from contacts and groups, and a message to a group read back over IMAP."""

import email
import imaplib
import re
from email import policy

import pytest
from django.core.exceptions import ValidationError

from mailcore.mime.vcard import Card, VCardError, format_vcard, parse_vcards
from mailcore.models import Contact, ContactGroup
from mailcore.services import contacts as book
from mailcore.services.contacts import ContactInput
from tests.conftest import PASSWORD
from tests.webmail.conftest import HX
from tests.webmail.test_compose import new, release_and_deliver, send

SAMPLE = (
    "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Ann Lee\r\nN:Lee;Ann;;;\r\n"
    "EMAIL;TYPE=work:ann@work.test\r\nitem1.EMAIL;PREF=1:ann@home.test\r\n"
    "TEL;VALUE=uri;TYPE=\"voice,cell\":tel:+1-555-0100\r\n"
    "NOTE:Met at the conference\\, room 4\\nloves tea\r\n"
    "CATEGORIES:Family,Book club\r\nUID:urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1\r\n"
    "END:VCARD\r\n"
    "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Smith;Bob\r\nFN:Bob Smith with a name long enough to be\r\n"
    "  folded\r\nEMAIL:bob@remote.test\r\nEND:VCARD\r\n"
)


# --- vCard ---------------------------------------------------------------------------------


def test_a_vcard_file_is_read_with_escapes_folding_groups_and_parameters():
    ann, bob = parse_vcards(SAMPLE.encode())
    assert ann.name == "Ann Lee" and ann.emails == ["ann@work.test", "ann@home.test"]
    assert ann.phones == ["+1-555-0100"]
    assert ann.note == "Met at the conference, room 4\nloves tea"
    assert ann.categories == ["Family", "Book club"]
    assert ann.uid == "urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1"
    assert bob.name == "Bob Smith with a name long enough to be folded"


def test_writing_then_reading_gives_the_same_card_and_lines_are_folded_at_75_octets():
    card = Card(name="Zoë, “the one”; ✓" * 5, emails=["z@x.test"], phones=["+351 1"],
                note="two\nlines; a\\b", categories=["A,B", "C"], uid="urn:uuid:1")
    text = format_vcard(card)
    assert text.startswith("BEGIN:VCARD\r\nVERSION:4.0\r\n") and text.endswith("END:VCARD\r\n")
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    assert parse_vcards(text.encode()) == [card]


@pytest.mark.parametrize("data, complaint", [
    (b"name,email\nAnn,ann@x.test\n", "does not start with BEGIN:VCARD"),
    (b"\x89PNG\r\n\x1a\n\x00\xff", "not UTF-8"),
    (b"", "does not start with BEGIN:VCARD"),
    (b"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:A\r\n", "has no END:VCARD"),
    (b"BEGIN:VCARD\r\nVERSION:4.0\r\nEMAIL:a@x.test\r\nEND:VCARD\r\n", "has no name"),
    (b"BEGIN:VCARD\r\nFN:A\r\nEND:VCARD\r\n", "no VERSION"),
    (b"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:A\r\njunk line\r\nEND:VCARD\r\n", "Line 4"),
    (b"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:A\r\nEMAIL:not an address\r\nEND:VCARD\r\n",
     "not an e-mail address"),
    (b"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:A\r\nBEGIN:VCARD\r\nEND:VCARD\r\n", "inside another"),
    (b"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:A\r\nEND:VCARD\r\nstray\r\n", "outside any card"),
    (b"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:" + b"a" * 20000 + b"\r\nEND:VCARD\r\n", "too long"),
    (b"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:A\r\nEND:VCARD\r\n" * 5001, "more than 5000 cards"),
    (b"BEGIN:VCARD\r\n" + b"NOTE:x\r\n" * 300_000, "larger than 2 MB"),
])
def test_what_is_not_a_vcard_is_refused_whole_with_a_reason(data, complaint):
    with pytest.raises(VCardError, match=complaint):
        parse_vcards(data)


# --- Service ---------------------------------------------------------------------------------


def test_contacts_are_saved_with_groups_and_checked(mailbox):
    ann = book.save_contact(mailbox, ContactInput("  Ann   Lee ", ["Ann@Work.TEST", "ann@Work.test"],
                                                  ["+1 555"], "notes", ["Family", " Family "]))
    assert ann.name == "Ann Lee"
    assert [e.address for e in ann.emails.all()] == ["Ann@work.test"]
    assert [g.name for g in ann.groups.all()] == ["Family"]
    with pytest.raises(ValidationError):
        book.save_contact(mailbox, ContactInput("X", ["x@y.test>, evil@z.test"]))
    with pytest.raises(ValidationError):
        book.save_contact(mailbox, ContactInput("", []))
    assert book.save_contact(mailbox, ContactInput("", ["only@addr.test"])).name == "only@addr.test"


def test_import_updates_by_uid_or_address_and_is_all_or_nothing(mailbox):
    assert book.import_vcards(mailbox, SAMPLE.encode()) == book.ImportResult(2, 0)
    assert book.import_vcards(mailbox, SAMPLE.encode()) == book.ImportResult(0, 2)
    assert Contact.objects.filter(mailbox=mailbox).count() == 2
    bad = SAMPLE.replace("bob@remote.test", "bob at remote").encode()
    with pytest.raises(VCardError):
        book.import_vcards(mailbox, bad + SAMPLE.encode())
    assert Contact.objects.filter(mailbox=mailbox).count() == 2
    again = [c for c in parse_vcards(book.export_vcards(mailbox).encode()) if not c.is_group]
    assert sorted(c.name for c in again) == ["Ann Lee", "Bob Smith with a name long enough to be folded"]
    assert next(c for c in again if c.name == "Ann Lee").categories == ["Book club", "Family"]


def test_another_mailbox_sees_none_of_it(mailbox, other):
    book.import_vcards(mailbox, SAMPLE.encode())
    assert not book.suggest(other, "ann") and not book.list_contacts(other).exists()
    group = ContactGroup.objects.get(mailbox=mailbox, name="Family")
    assert book.group_members(other, group.pk) == []


# --- Page ------------------------------------------------------------------------------------


def test_the_page_adds_edits_deletes_imports_and_exports(web, mailbox):
    response = web.post("/addressbook/", {"name": "Carol", "emails": "carol@remote.test",
                                          "phones": "123", "notes": "", "groups": "Work"})
    assert response.status_code == 302
    carol = Contact.objects.get(mailbox=mailbox)
    html = web.get("/addressbook/").content.decode()
    assert "carol@remote.test" in html and "New message to Work" in html
    web.post(f"/addressbook/{carol.pk}/", {"name": "Carol B", "emails": "c@remote.test",
                                           "phones": "", "notes": "", "groups": ""})
    carol.refresh_from_db()
    assert carol.name == "Carol B" and not carol.groups.exists()
    bad = web.post("/addressbook/", {"name": "", "emails": "nobody", "phones": "", "notes": "",
                                     "groups": ""})
    assert bad.status_code == 400 and "is not an e-mail address" in bad.content.decode()
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("x.vcf", SAMPLE.encode(), "text/vcard")
    assert web.post("/addressbook/import/", {"file": upload}).status_code == 302
    assert Contact.objects.filter(mailbox=mailbox).count() == 3
    notcard = SimpleUploadedFile("photo.jpg", b"\xff\xd8\xff\xe0 JFIF", "image/jpeg")
    refused = web.post("/addressbook/import/", {"file": notcard})
    assert refused.status_code == 400
    assert "The file is not a vCard" in refused.content.decode()
    export = web.get("/addressbook/export.vcf")
    assert export["Content-Type"] == "text/vcard; charset=utf-8"
    cards = parse_vcards(export.content)
    assert len([c for c in cards if not c.is_group]) == 3
    assert sorted(c.name for c in cards if c.is_group) == ["Book club", "Family", "Work"]
    assert web.get(f"/addressbook/{carol.pk}/delete/").status_code == 405
    web.post(f"/addressbook/{carol.pk}/delete/")
    assert Contact.objects.filter(mailbox=mailbox).count() == 2


def test_someone_elses_contact_is_not_found(web, other, client_for):
    contact = book.save_contact(other, ContactInput("Theirs", ["t@x.test"]))
    assert web.get(f"/addressbook/{contact.pk}/").status_code == 404
    assert web.post(f"/addressbook/{contact.pk}/delete/").status_code == 404
    assert Contact.objects.filter(pk=contact.pk).exists()


def test_correspondents_are_added_on_request_once(web, mailbox, deliver):
    deliver(sender="Dora Explorer <dora@remote.test>")
    deliver(sender="mailer-daemon@remote.test")
    assert not Contact.objects.filter(mailbox=mailbox).exists()
    web.post("/addressbook/from-correspondents/")
    web.post("/addressbook/from-correspondents/")
    assert [c.name for c in Contact.objects.filter(mailbox=mailbox)] == ["Dora Explorer"]


def test_autocomplete_offers_groups_and_contacts_before_correspondents(web, mailbox, deliver):
    deliver(sender="Annabel <annabel@remote.test>")
    book.import_vcards(mailbox, SAMPLE.encode())
    results = web.get("/contacts/", {"q": "ann"}).json()["results"]
    assert [r["address"] for r in results] == ["ann@work.test", "ann@home.test",
                                               "annabel@remote.test"]
    group = web.get("/contacts/", {"q": "fam"}).json()["results"]
    assert group[0]["label"] == "Group: Family (1)"
    assert group[0]["text"] == "Ann Lee <ann@work.test>"


def test_a_message_to_a_group_reaches_every_member_over_imap(web, mailbox, make_mailbox,
                                                            imap_listener):
    make_mailbox("bob@example.test")
    make_mailbox("carol@example.test")
    for name in ("bob", "carol"):
        book.save_contact(mailbox, ContactInput(name.title(), [f"{name}@example.test"],
                                                groups=["Team"]))
    group = ContactGroup.objects.get(name="Team")
    cid = new(web, group=group.pk)
    html = web.get(f"/compose/{cid}/").content.decode()
    assert "Bob &lt;bob@example.test&gt;, Carol &lt;carol@example.test&gt;" in html
    response = send(web, cid, to="Bob <bob@example.test>, Carol <carol@example.test>",
                    subject="Team lunch", body="Friday?\r\n")
    assert response.status_code == 200
    release_and_deliver()
    host, port = imap_listener
    for name in ("bob", "carol"):
        with imaplib.IMAP4(host, port) as imap:
            imap.login(f"{name}@example.test", PASSWORD)
            imap.select("INBOX")
            _, data = imap.fetch("1", "(RFC822)")
            message = email.message_from_bytes(data[0][1], policy=policy.default)
            assert str(message["Subject"]) == "Team lunch"
            assert [a.addr_spec for a in message["To"].addresses] == [
                "bob@example.test", "carol@example.test"]
            assert re.sub(r"\r\n", "\n", message.get_content()).startswith("Friday?")
    assert HX
