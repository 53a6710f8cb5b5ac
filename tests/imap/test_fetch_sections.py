"""FETCH of every section of a deep multipart message, compared with what Python's email package
parses from the same bytes; BODYSTRUCTURE as imapclient parses it; exact bytes on the wire."""

import base64
import email
import quopri
import socket
from email.message import EmailMessage
from email.policy import SMTP, default

import imapclient
import pytest

from mailcore.services import delivery
from tests.conftest import PASSWORD
from tests.imap.conftest import ADDRESS

pytestmark = pytest.mark.django_db(transaction=True)


def deep_message() -> bytes:
    inner = EmailMessage()
    inner["From"] = "Carol <carol@remote.test>"
    inner["To"] = "demo@example.test"
    inner["Subject"] = "Inner report"
    inner.set_content("Inner plain text, naïve café.\n", cte="quoted-printable")
    inner.add_alternative("<p>Inner <b>HTML</b></p>", subtype="html")
    inner.add_attachment(b"%PDF-1.4 fake" * 20, maintype="application", subtype="pdf",
                         filename="report.pdf")
    outer = EmailMessage()
    outer["From"] = "Alice <alice@remote.test>"
    outer["To"] = "Demo <demo@example.test>"
    outer["Cc"] = "Bob <bob@remote.test>"
    outer["Subject"] = "=?utf-8?q?Deep_=C3=BCber?="
    outer["Message-ID"] = "<deep@remote.test>"
    outer.set_content("Outer text body\n")
    outer.add_alternative("<html><body>Outer <i>HTML</i></body></html>", subtype="html")
    outer.add_attachment(inner)
    outer.add_attachment(bytes(range(256)) * 4, maintype="image", subtype="png",
                         filename="pixels.png")
    return outer.as_bytes(policy=SMTP)


def decode(data: bytes, cte: str) -> bytes:
    cte = (cte or "7bit").lower()
    if cte == "base64":
        return base64.b64decode(data)
    if cte == "quoted-printable":
        return quopri.decodestring(data)
    return data


def leaves(message, prefix=()):
    """(section numbers, part) for every leaf, numbered as IMAP does (§6.4.5)."""
    if message.is_multipart():
        for i, part in enumerate(message.get_payload(), 1):
            if part.get_content_type() == "message/rfc822":
                yield prefix + (i,), part
                inner = part.get_payload(0)
                if inner.is_multipart():
                    yield from leaves(inner, prefix + (i,))
                else:
                    yield prefix + (i, 1), inner
            elif part.is_multipart():
                yield from leaves(part, prefix + (i,))
            else:
                yield prefix + (i,), part
    else:
        yield prefix + (1,), message


@pytest.fixture
def deep(mailbox):
    raw = deep_message()
    delivery.deliver_to_mailboxes(raw, [mailbox.pk])
    return raw


@pytest.fixture
def client(imap, deep):
    client = imapclient.IMAPClient("127.0.0.1", port=imap.ports[0], ssl=False, timeout=20)
    client.login(ADDRESS, PASSWORD)
    client.select_folder("INBOX")
    yield client
    client.logout()


def test_every_leaf_section_decodes_to_what_the_email_package_parses(client, deep):
    parsed = email.message_from_bytes(deep, policy=default)
    found = list(leaves(parsed))
    assert len(found) >= 6
    for numbers, part in found:
        section = ".".join(map(str, numbers))
        key = f"BODY[{section}]".encode()
        data = client.fetch([1], [f"BODY.PEEK[{section}]"])[1][key]
        if part.get_content_type() == "message/rfc822":
            inner = email.message_from_bytes(data, policy=default)
            assert inner["Subject"] == part.get_payload(0)["Subject"]
            continue
        expected = part.get_payload(decode=True)
        assert decode(data, part.get("Content-Transfer-Encoding")) == expected, section


def test_header_text_and_mime_sections(client, deep):
    parsed = email.message_from_bytes(deep, policy=default)
    response = client.fetch([1], ["BODY.PEEK[HEADER]", "BODY.PEEK[TEXT]", "BODY.PEEK[2.HEADER]",
                                  "BODY.PEEK[2.TEXT]", "BODY.PEEK[1.2.MIME]",
                                  "BODY.PEEK[2.HEADER.FIELDS (SUBJECT FROM)]",
                                  "BODY.PEEK[3]<10.16>"])[1]
    header_end = deep.index(b"\r\n\r\n") + 4
    assert response[b"BODY[HEADER]"] == deep[:header_end]
    assert response[b"BODY[TEXT]"] == deep[header_end:]
    inner_header = response[b"BODY[2.HEADER]"]
    assert email.message_from_bytes(inner_header)["Subject"] == "Inner report"
    inner_text = response[b"BODY[2.TEXT]"]
    inner = parsed.get_payload()[1].get_payload(0)
    assert inner_text.startswith(b"--" + inner.get_boundary().encode())
    mime = response[b"BODY[1.2.MIME]"]
    assert mime.startswith(b"Content-Type: text/html") and mime.endswith(b"\r\n\r\n")
    fields = response[b"BODY[2.HEADER.FIELDS (SUBJECT FROM)]"]
    assert fields == b"From: Carol <carol@remote.test>\r\nSubject: Inner report\r\n\r\n"
    full_part3 = client.fetch([1], ["BODY.PEEK[3]"])[1][b"BODY[3]"]
    assert response[b"BODY[3]<10>"] == full_part3[10:26]


def test_bodystructure_matches_the_tree_the_email_package_sees(client, deep):
    structure = client.fetch([1], ["BODYSTRUCTURE"])[1][b"BODYSTRUCTURE"]
    assert structure.is_multipart
    parts, subtype = structure[0], structure[1]
    assert subtype == b"mixed"
    alternative = parts[0]
    assert alternative.is_multipart and alternative[1] == b"alternative"
    assert [p[:2] for p in alternative[0]] == [(b"text", b"plain"), (b"text", b"html")]
    attached = parts[1]
    assert attached[:2] == (b"message", b"rfc822")
    envelope = attached[7]
    assert envelope[1] == b"Inner report"  # imapclient leaves a nested ENVELOPE a tuple
    inner_body = attached[8]
    # imapclient keeps nested multiparts as tuples: (child, child, subtype, params, ...)
    assert inner_body[0][2] == b"alternative"
    assert inner_body[1][:2] == (b"application", b"pdf") and inner_body[2] == b"mixed"
    png = parts[2]
    assert png[:2] == (b"image", b"png")
    assert png[8][0] == b"attachment" and png[8][1] == (b"filename", b"pixels.png")
    outer_envelope = client.fetch([1], ["ENVELOPE"])[1][b"ENVELOPE"]
    # ENVELOPE strings are the raw header text, RFC 2047 words undecoded (§7.4.2).
    assert b"=?utf-8?q?" in outer_envelope.subject
    decoded = email.message_from_bytes(b"Subject: " + outer_envelope.subject + b"\r\n\r\n",
                                       policy=default)["Subject"]
    assert decoded == "Deep über"
    assert outer_envelope.cc[0].mailbox == b"bob"
    assert outer_envelope.message_id == b"<deep@remote.test>"


def test_missing_sections_read_as_empty(client):
    response = client.fetch([1], ["BODY.PEEK[9]", "BODY.PEEK[3.HEADER]"])[1]
    assert response[b"BODY[9]"] == b""
    assert response[b"BODY[3.HEADER]"] == b""


def test_bodystructure_bytes_on_the_wire(imap, mailbox):
    raw = (
        b"From: a@b.test\r\nSubject: x\r\nContent-Type: text/plain; charset=us-ascii;\r\n"
        b" format=flowed\r\nContent-Language: en, fr\r\n\r\nhello\r\nworld\r\n"
    )
    delivery.deliver_to_mailboxes(raw, [mailbox.pk])
    sock = socket.create_connection(("127.0.0.1", imap.ports[0]), timeout=10)
    reader = sock.makefile("rb")
    reader.readline()
    sock.sendall(f'a LOGIN {ADDRESS} "{PASSWORD}"\r\nb SELECT INBOX\r\n'.encode())
    while not reader.readline().startswith(b"b OK"):
        pass
    sock.sendall(b"c FETCH 1 (BODYSTRUCTURE BODY)\r\n")
    line = reader.readline()
    assert line == (
        b'* 1 FETCH (BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii" "format" "flowed") '
        b'NIL NIL "7bit" 14 2 NIL NIL ("en" "fr") NIL) '
        b'BODY ("text" "plain" ("charset" "us-ascii" "format" "flowed") NIL NIL "7bit" 14 2))'
        b"\r\n"
    )
    sock.close()
