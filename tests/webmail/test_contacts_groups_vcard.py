"""vCard 4 groups (RFC 6350 §6.1.4 KIND:group, §6.6.5 MEMBER) mapped to the address book's
groups: read, imported (members by UID or mailto:, in any order), exported and read back."""

import pytest
from django.core.exceptions import ValidationError

from mailcore.mime.vcard import Card, VCardError, format_vcard, parse_vcards
from mailcore.models import Contact, ContactGroup
from mailcore.services import contacts as book
from mailcore.services.contacts import ContactInput

ANN_UID = "urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1"
GROUP = (
    # The group comes first: its members are cards further down, and one only an address.
    "BEGIN:VCARD\r\nVERSION:4.0\r\nKIND:group\r\nFN:The Doe family\r\n"
    "UID:urn:uuid:03a0e51f-d1aa-4385-8a53-e29025acd8af\r\n"
    f"MEMBER:{ANN_UID}\r\nMEMBER:mailto:jane@doe.test\r\n"
    "MEMBER:sip:nobody@voip.test\r\nEND:VCARD\r\n"
    "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Ann Doe\r\nEMAIL:ann@doe.test\r\n"
    f"UID:{ANN_UID}\r\nEND:VCARD\r\n"
)


def test_a_group_card_is_read_with_its_kind_and_members():
    group, ann = parse_vcards(GROUP.encode())
    assert group.is_group and group.name == "The Doe family"
    assert group.members == [ANN_UID, "mailto:jane@doe.test", "sip:nobody@voip.test"]
    assert not ann.is_group and ann.members == []


def test_member_outside_a_group_card_is_skipped_and_a_member_must_be_a_uri():
    person = ("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:A\r\nMEMBER:mailto:b@x.test\r\nEND:VCARD\r\n")
    assert parse_vcards(person.encode())[0].members == []
    bad = GROUP.replace("MEMBER:mailto:jane@doe.test", "MEMBER:jane at doe")
    with pytest.raises(VCardError, match="MEMBER must be a URI"):
        parse_vcards(bad.encode())


def test_importing_a_group_makes_an_address_book_group_with_its_members(mailbox):
    result = book.import_vcards(mailbox, GROUP.encode())
    assert (result.created, result.updated) == (2, 0)
    group = ContactGroup.objects.get(mailbox=mailbox)
    assert group.name == "The Doe family"
    assert group.uid == "urn:uuid:03a0e51f-d1aa-4385-8a53-e29025acd8af"
    # By UID, and by mailto: (a contact made for the address); the sip: URI names no one.
    assert sorted(book.group_members(mailbox, group.pk)) == [
        ("Ann Doe", "ann@doe.test"), ("jane@doe.test", "jane@doe.test")]
    # Again: the same group is updated, no one is doubled.
    result = book.import_vcards(mailbox, GROUP.encode())
    assert (result.created, result.updated) == (0, 2)
    assert ContactGroup.objects.filter(mailbox=mailbox).count() == 1
    assert Contact.objects.filter(mailbox=mailbox).count() == 2


def test_a_bad_member_address_refuses_the_whole_file(mailbox):
    bad = GROUP.replace("mailto:jane@doe.test", "mailto:jane")
    with pytest.raises(ValidationError, match="Card 1 .The Doe family.: 'jane' is not an e-mail"):
        book.import_vcards(mailbox, bad.encode())
    assert not Contact.objects.filter(mailbox=mailbox).exists()
    assert not ContactGroup.objects.filter(mailbox=mailbox).exists()


def test_export_writes_each_group_as_a_kind_group_card_that_reads_back(mailbox, other):
    book.save_contact(mailbox, ContactInput("Bob", ["bob@x.test"], groups=["Team", "Pals"]))
    book.save_contact(mailbox, ContactInput("Cy", ["cy@x.test"], groups=["Team"]))
    book.save_contact(mailbox, ContactInput("Dee", ["dee@x.test"]))
    text = book.export_vcards(mailbox)
    cards = parse_vcards(text.encode())
    groups = {c.name: c for c in cards if c.is_group}
    people = {c.uid: c.name for c in cards if not c.is_group}
    assert set(groups) == {"Team", "Pals"}
    assert sorted(people[m] for m in groups["Team"].members) == ["Bob", "Cy"]
    assert [people[m] for m in groups["Pals"].members] == ["Bob"]
    assert "KIND:group\r\n" in text and "MEMBER:urn:uuid:" in text
    # Into another mailbox: the same groups, the same members.
    book.import_vcards(other, text.encode())
    team = ContactGroup.objects.get(mailbox=other, name="Team")
    assert team.uid == groups["Team"].uid
    assert sorted(n for n, _ in book.group_members(other, team.pk)) == ["Bob", "Cy"]


def test_a_member_without_a_uri_uid_is_named_by_mailto():
    card = Card(name="G", kind="group", uid="g1", members=["mailto:a@x.test"])
    assert "MEMBER:mailto:a@x.test\r\n" in format_vcard(card)
    assert parse_vcards(format_vcard(card).encode()) == [card]


def test_each_existing_group_gets_its_own_uid(mailbox):
    one = ContactGroup.objects.create(mailbox=mailbox, name="One")
    two = ContactGroup.objects.create(mailbox=mailbox, name="Two")
    assert one.uid != two.uid and one.uid.startswith("urn:uuid:")
