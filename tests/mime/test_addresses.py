"""Addresses and envelope addresses (mailcore.mime.addresses): RFC 5322 §3.4, RFC 3501 §7.4.2."""

import email.utils

import pytest

from mailcore.mime.addresses import parse_address_list, parse_envelope_addresses


def test_envelope_addresses_keep_names_raw_and_split_mailbox_and_host():
    assert parse_envelope_addresses(
        '"Doe, John" <john@example.com>, =?utf-8?q?Z=C3=B6e?= <zoe@x.org>'
    ) == [
        ["Doe, John", None, "john", "example.com"],
        ["=?utf-8?q?Z=C3=B6e?=", None, "zoe", "x.org"],
    ]


def test_envelope_addresses_mark_groups_with_nil_host():
    assert parse_envelope_addresses("Team: a@x, B <b@y>;, c@z") == [
        [None, None, "Team", None],
        [None, None, "a", "x"],
        ["B", None, "b", "y"],
        [None, None, None, None],
        [None, None, "c", "z"],
    ]
    assert parse_envelope_addresses("undisclosed-recipients:;") == [
        [None, None, "undisclosed-recipients", None],
        [None, None, None, None],
    ]


def test_envelope_addresses_keep_source_routes_and_comment_names():
    assert parse_envelope_addresses("<@relay1,@relay2:joe@example.com>") == [
        [None, "@relay1,@relay2", "joe", "example.com"]
    ]
    assert parse_envelope_addresses("joe@example.com (Joe Bloggs)") == [
        ["Joe Bloggs", None, "joe", "example.com"]
    ]
    assert parse_envelope_addresses("John Q. Public <jqp@example.com>")[0][0] == "John Q. Public"


@pytest.mark.parametrize("value", ["", "   ", ",,,", "(just a comment)"])
def test_empty_address_headers_give_nil(value):
    assert parse_envelope_addresses(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "<<<@@>>>",
        '"unterminated, (comment (nested',
        ";;;,,,:::",
        "<>",
        "a@, @b, @",
        "Group: a@b",
        "\x00\x01\x02",
        "<a@b> trailing junk <c@d>",
    ],
)
def test_garbage_addresses_never_raise(value):
    for address in parse_envelope_addresses(value) or []:
        assert len(address) == 4
    parse_address_list(value)


@pytest.mark.parametrize(
    "value",
    [
        "john@example.com",
        "John Doe <john@example.com>",
        '"Doe, John" <john@example.com>, jane@example.org',
        "Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>",
        "Pete <pete@silly.test>",
        "joe@example.com (Joe Bloggs)",
    ],
)
def test_address_pairs_agree_with_the_email_package_on_well_formed_input(value):
    expected = [pair for pair in email.utils.getaddresses([value]) if pair[1]]
    assert parse_address_list(value) == expected


def test_address_pairs_decode_names_and_include_group_members():
    value = b"=?utf-8?q?Jo=C3=A3o?= <joao@example.com>, Friends: ana@x.org;"
    assert parse_address_list(value) == [("João", "joao@example.com"), ("", "ana@x.org")]
