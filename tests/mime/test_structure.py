"""scan_structure and find_part agree with Python's email package and with RFC 3501 sections."""

import base64
import email
import email.policy
from email.message import EmailMessage

import pytest

from mailcore.mime.parse import decode_part_body
from mailcore.mime.structure import find_part, scan_structure

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"


def deep_message() -> bytes:
    """mixed -> (alternative -> (plain, related -> (html, image)), pdf, message/rfc822 -> mixed)."""
    image = base64.encodebytes(PNG).replace(b"\n", b"\r\n")
    pdf = base64.encodebytes(PDF).replace(b"\n", b"\r\n")
    return (
        b"From: =?UTF-8?Q?Jo=C3=A3o?= <joao@example.com>\r\n"
        b"To: Maria <maria@example.test>\r\n"
        b"Subject: deep\r\n"
        b"Date: Mon, 3 Nov 2025 10:11:12 +0100\r\n"
        b"Message-ID: <deep@example.com>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="outer"\r\n'
        b"\r\n"
        b"This is a preamble.\r\n"
        b"--outer\r\n"
        b'Content-Type: multipart/alternative; boundary="alt"\r\n'
        b"\r\n"
        b"--alt\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n"
        b"\r\n"
        b"Ol=C3=A1 Maria,=\r\n"
        b" a soft break and a long line.\r\n"
        b"\r\n"
        b"--alt\r\n"
        b'Content-Type: multipart/related; boundary="rel"; type="text/html"\r\n'
        b"\r\n"
        b"--rel\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"\r\n"
        b'<p>Ol\xc3\xa1 <img src="cid:logo@x"></p>\r\n'
        b"--rel\r\n"
        b"Content-Type: image/png; name=logo.png\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"Content-ID: <logo@x>\r\n"
        b"Content-Disposition: inline\r\n"
        b"\r\n" + image + b"--rel--\r\n"
        b"\r\n"
        b"--alt--\r\n"
        b"\r\n"
        b"--outer\r\n"
        b"Content-Type: application/pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf\r\n"
        b"\r\n" + pdf + b"--outer\r\n"
        b"Content-Type: message/rfc822\r\n"
        b"Content-Description: forwarded\r\n"
        b"\r\n"
        b"From: Inner <inner@example.org>\r\n"
        b"Subject: inner message\r\n"
        b'Content-Type: multipart/mixed; boundary="in"\r\n'
        b"\r\n"
        b"--in\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n"
        b"\r\n"
        b"Caf=E9\r\n"
        b"--in\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"\r\n"
        b"AAECAwQF\r\n"
        b"--in--\r\n"
        b"\r\n"
        b"--outer--\r\n"
        b"This is an epilogue.\r\n"
    )


def library_message() -> bytes:
    """A message composed by Python's own email package, serialised with CRLF."""
    inner = EmailMessage()
    inner["From"] = "inner@example.org"
    inner["Subject"] = "attached"
    inner.set_content("inner plain\n")
    inner.add_alternative("<p>inner html</p>\n", subtype="html")
    msg = EmailMessage()
    msg["From"] = "Ana <ana@example.com>"
    msg["To"] = "bob@example.test"
    msg["Subject"] = "Relatório mensal"
    msg.set_content("Olá,\nsegue o relatório.\n" * 20)
    msg.add_alternative("<p>Olá,</p><p>segue o <b>relatório</b>.</p>\n" * 20, subtype="html")
    msg.get_payload()[1].add_related(PNG, "image", "png", cid="<img1@x>")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="relatório.pdf")
    msg.add_attachment(inner)
    return msg.as_bytes(policy=email.policy.SMTP)


def python_sections(msg, prefix=()):
    """Yield (section, email part) the way RFC 3501 §6.4.5 numbers them."""
    if msg.is_multipart() and msg.get_content_maintype() == "multipart":
        for number, child in enumerate(msg.get_payload(), 1):
            section = (*prefix, number)
            yield section, child
            yield from _below(child, section)
    else:
        yield (*prefix, 1), msg


def _below(part, section):
    if part.get_content_maintype() == "multipart":
        yield from python_sections(part, section)
    elif part.get_content_type() == "message/rfc822":
        yield from python_sections(part.get_payload()[0], section)


@pytest.mark.parametrize("make", [deep_message, library_message])
def test_every_section_decodes_to_what_the_email_package_decodes(make):
    raw = make()
    structure = scan_structure(raw)
    reference = email.message_from_bytes(raw, policy=email.policy.default)
    sections = list(python_sections(reference))
    assert len(sections) > 5
    for section, expected in sections:
        part = find_part(structure, list(section))
        assert part is not None, section
        if section == (1,) and not reference.is_multipart():
            continue
        assert (part["type"], part["subtype"]) == (
            expected.get_content_maintype(),
            expected.get_content_subtype(),
        ), section
        if expected.is_multipart():
            assert len(part["children"]) == len(expected.get_payload()), section
        else:
            assert decode_part_body(raw, part) == expected.get_payload(decode=True), section


def test_deep_message_sections_match_rfc_3501_numbering():
    raw = deep_message()
    s = scan_structure(raw)
    kinds = {
        (): "multipart/mixed",
        (1,): "multipart/alternative",
        (1, 1): "text/plain",
        (1, 2): "multipart/related",
        (1, 2, 1): "text/html",
        (1, 2, 2): "image/png",
        (2,): "application/pdf",
        (3,): "message/rfc822",
        (3, 1): "text/plain",
        (3, 2): "application/octet-stream",
    }
    for section, kind in kinds.items():
        part = find_part(s, list(section))
        assert f"{part['type']}/{part['subtype']}" == kind, section
    for missing in ([4], [1, 3], [1, 1, 1], [3, 3], [0], [2, 1], [3, 1, 1]):
        assert find_part(s, missing) is None, missing


def test_offsets_give_the_imap_header_mime_and_text_slices():
    raw = deep_message()
    s = scan_structure(raw)
    image = find_part(s, [1, 2, 2])
    mime = raw[image["header_start"] : image["body_start"]]
    assert mime.startswith(b"Content-Type: image/png; name=logo.png\r\n")
    assert mime.endswith(b"Content-Disposition: inline\r\n\r\n")
    assert base64.b64decode(raw[image["body_start"] : image["body_end"]]) == PNG
    assert image["id"] == "<logo@x>"
    assert image["disposition"] == ["inline", []]

    plain = find_part(s, [1, 1])
    body = raw[plain["body_start"] : plain["body_end"]]
    # The CRLF before a delimiter belongs to the delimiter (RFC 2046 §5.1.1).
    assert body == b"Ol=C3=A1 Maria,=\r\n a soft break and a long line.\r\n"
    assert plain["size"] == len(body)
    assert plain["lines"] == 2

    message = find_part(s, [3])
    assert message["description"] == "forwarded"
    inner = message["children"][0]
    assert raw[inner["header_start"] : inner["body_start"]].startswith(b"From: Inner")
    assert raw[message["body_start"] : message["body_end"]].endswith(b"--in--\r\n")
    assert message["envelope"][1] == "inner message"
    assert message["envelope"][2] == [["Inner", None, "inner", "example.org"]]

    pdf = find_part(s, [2])
    assert pdf["disposition"] == ["attachment", [["filename", "résumé.pdf"]]]
    assert s["body_end"] == len(raw)
    assert raw[s["header_start"] : s["body_start"]].endswith(b'boundary="outer"\r\n\r\n')


def test_part_one_of_a_single_part_message_is_its_body():
    raw = b"Subject: x\r\n\r\nhello\r\n"
    s = scan_structure(raw)
    assert find_part(s, []) is s
    assert find_part(s, [1]) is s
    assert find_part(s, [2]) is None
    assert find_part(s, [1, 1]) is None
    assert raw[s["body_start"] : s["body_end"]] == b"hello\r\n"


def test_part_one_of_an_attached_single_part_message_is_that_message_body():
    raw = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nfirst\r\n--b\r\n"
        b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\ninner body\r\n--b--\r\n"
    )
    s = scan_structure(raw)
    part = find_part(s, [2, 1])
    assert raw[part["body_start"] : part["body_end"]] == b"inner body"
    assert find_part(s, [2, 2]) is None


def test_a_top_level_message_rfc822_is_entered_through_part_one():
    raw = b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\na\r\n--q\r\n\r\nb\r\n--q--\r\n"
    s = scan_structure(raw)
    assert find_part(s, [1]) is s
    assert raw[find_part(s, [1, 2])["body_start"] : find_part(s, [1, 2])["body_end"]] == b"b"


def test_missing_closing_delimiter_runs_the_last_part_to_the_end():
    raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b\r\n\r\ntwo\r\nstill two"
    s = scan_structure(raw)
    assert [raw[c["body_start"] : c["body_end"]] for c in s["children"]] == [
        b"one",
        b"two\r\nstill two",
    ]


def test_multipart_without_parts_has_one_empty_text_part_like_dovecot():
    raw = b'Content-Type: multipart/mixed; boundary="ab"\n\nbody\n'
    s = scan_structure(raw)
    assert len(s["children"]) == 1
    child = s["children"][0]
    assert (child["type"], child["subtype"], child["size"], child["lines"]) == (
        "text",
        "plain",
        0,
        0,
    )


def test_bare_lf_line_ends_are_delimiters_too():
    raw = b"Content-Type: multipart/alternative; boundary=x\n\n--x\nContent-Type: text/plain\n\nline\n--x\n\n<p>\n--x--\n"
    s = scan_structure(raw)
    first, second = s["children"]
    assert raw[first["header_start"] : first["body_start"]] == b"Content-Type: text/plain\n\n"
    assert raw[first["body_start"] : first["body_end"]] == b"line"
    assert raw[second["body_start"] : second["body_end"]] == b"<p>"


def test_delimiters_may_carry_transport_padding_but_not_other_text():
    raw = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b \t\r\n\r\none\r\n--bb\r\n--b--x\r\n"
        b"--b\r\n\r\ntwo\r\n--b-- \r\n"
    )
    s = scan_structure(raw)
    bodies = [raw[c["body_start"] : c["body_end"]] for c in s["children"]]
    assert bodies == [b"one\r\n--bb\r\n--b--x", b"two"]


def test_children_of_a_digest_default_to_message_rfc822():
    raw = (
        b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: one\r\n\r\n1\r\n"
        b"--d\r\nContent-Type: text/plain\r\n\r\nnote\r\n--d--\r\n"
    )
    s = scan_structure(raw)
    first, second = s["children"]
    assert (first["type"], first["subtype"]) == ("message", "rfc822")
    assert first["envelope"][1] == "one"
    assert (second["type"], second["subtype"]) == ("text", "plain")


def test_parameters_and_mime_fields_are_reported():
    raw = (
        b'Content-Type: Text/HTML; Charset="UTF-8"; title*0*=us-ascii\'en\'This%20is; title*1=" fun"\r\n'
        b"Content-Transfer-Encoding: Quoted-Printable\r\n"
        b"Content-Language: pt-BR\r\n"
        b"Content-Location: https://example.com/x\r\n"
        b"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n"
        b'Content-Disposition: INLINE; filename="a \\"b\\".html"\r\n\r\n<p>x</p>\r\n'
    )
    s = scan_structure(raw)
    assert (s["type"], s["subtype"]) == ("text", "html")
    assert s["params"] == [["charset", "UTF-8"], ["title", "This is fun"]]
    assert s["encoding"] == "quoted-printable"
    assert s["language"] == "pt-BR"
    assert s["location"] == "https://example.com/x"
    assert s["md5"] == "Q2hlY2sgSW50ZWdyaXR5IQ=="
    assert s["disposition"] == ["inline", [["filename", 'a "b".html']]]


def test_the_first_of_duplicate_content_types_wins():
    raw = b"Content-Type: text/html\r\nContent-Type: image/png\r\n\r\nx"
    assert scan_structure(raw)["subtype"] == "html"
