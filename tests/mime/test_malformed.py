"""Every broken message parses without raising, with offsets that stay inside the raw bytes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mailcore.mime.parse import decode_part_body, parse_message, part_text
from mailcore.mime.structure import MAX_DEPTH, MAX_PARTS, find_part, iter_parts, scan_structure

CORPUS = Path(__file__).resolve().parent.parent / "data" / "malformed"
CORPUS_FILES = sorted(CORPUS.glob("*.eml"))

HEADER = b"From: a@example.com\r\nSubject: nest\r\n"


def nested_multiparts(levels: int) -> bytes:
    out = [HEADER]
    for i in range(levels):
        out.append(b'Content-Type: multipart/mixed; boundary="n%d"\r\n\r\n--n%d\r\n' % (i, i))
    out.append(b"Content-Type: text/plain\r\n\r\ndeepest\r\n")
    for i in reversed(range(levels)):
        out.append(b"--n%d--\r\n" % i)
    return b"".join(out)


def nested_messages(levels: int) -> bytes:
    return (
        HEADER
        + b"Content-Type: message/rfc822\r\n\r\n"
        + b"Subject: inner\r\nContent-Type: message/rfc822\r\n\r\n" * levels
        + b"Subject: end\r\n\r\nbody\r\n"
    )


def assert_consistent(raw: bytes, structure: dict) -> int:
    """Check offsets are in bounds, ordered, and children lie inside parents; count parts."""
    count = 0
    stack = [(structure, 0, len(raw))]
    while stack:
        part, low, high = stack.pop()
        count += 1
        assert low <= part["header_start"] <= part["body_start"] <= part["body_end"] <= high
        assert part["size"] == part["body_end"] - part["body_start"]
        assert part["lines"] == raw.count(b"\n", part["body_start"], part["body_end"])
        previous_end = part["body_start"]
        for child in part["children"]:
            assert child["header_start"] >= previous_end
            previous_end = child["body_end"]
            stack.append((child, part["body_start"], part["body_end"]))
        if part["type"] == "multipart":
            assert part["children"], "a multipart always has at least one part"
        if part["type"] == "message" and part["subtype"] == "rfc822":
            assert len(part["children"]) == 1
            assert part["envelope"] is not None and len(part["envelope"]) == 10
            assert part["children"][0]["header_start"] == part["body_start"]
    return count


def test_the_corpus_is_large_enough():
    assert len(CORPUS_FILES) >= 35


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus_message_parses_without_raising(path):
    raw = path.read_bytes()
    parsed = parse_message(raw)
    assert_consistent(raw, parsed.structure)
    assert parsed.structure == scan_structure(raw)
    assert len(parsed.envelope) == 10
    assert len(parsed.subject) <= 998
    assert len(parsed.preview) <= 200
    assert len(parsed.references) <= 100
    assert parsed.date is None or parsed.date.tzinfo is not None


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus_message_fields_survive_a_json_round_trip(path):
    parsed = parse_message(path.read_bytes())
    for value in (parsed.structure, parsed.envelope, parsed.defects, parsed.references):
        text = json.dumps(value)
        assert json.loads(text) == value
        # PostgreSQL jsonb and text columns reject NUL characters.
        assert "\\u0000" not in text
    for text in (parsed.subject, parsed.preview, parsed.message_id, parsed.in_reply_to):
        assert "\x00" not in text
    json.dumps([parsed.from_, parsed.sender, parsed.reply_to, parsed.to, parsed.cc, parsed.bcc])


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_every_part_of_a_corpus_message_decodes(path):
    raw = path.read_bytes()
    structure = scan_structure(raw)
    for part in iter_parts(structure):
        assert isinstance(decode_part_body(raw, part), bytes)
        assert "\x00" not in part_text(raw, part)


def test_a_thousand_nested_multiparts_are_cut_at_the_depth_limit():
    raw = nested_multiparts(1000)
    parsed = parse_message(raw)
    depth = 0
    part = parsed.structure
    while part["children"]:
        part = part["children"][0]
        depth += 1
    assert depth == MAX_DEPTH
    assert (part["type"], part["subtype"]) == ("text", "plain")
    assert part["params"] == []
    assert raw[part["body_start"] : part["body_end"]].startswith(b"--n100\r\n")
    assert_consistent(raw, parsed.structure)
    json.dumps(parsed.structure)
    assert find_part(parsed.structure, [1] * MAX_DEPTH) is part


def test_a_thousand_nested_messages_are_cut_at_the_depth_limit():
    raw = nested_messages(1000)
    parsed = parse_message(raw)
    assert_consistent(raw, parsed.structure)
    json.dumps(parsed.structure)
    assert parsed.has_attachments


def test_more_parts_than_the_limit_are_not_structured():
    raw = (
        HEADER
        + b"Content-Type: multipart/mixed; boundary=z\r\n\r\n"
        + b"".join(b"--z\r\n\r\n%d\r\n" % i for i in range(MAX_PARTS + 500))
        + b"--z--\r\n"
    )
    parsed = parse_message(raw)
    assert assert_consistent(raw, parsed.structure) <= MAX_PARTS
    assert any("too many" in defect for defect in parsed.defects)


def test_parts_nested_inside_many_parts_respect_the_part_limit():
    inner = (
        b"Content-Type: multipart/mixed; boundary=i\r\n\r\n" + b"--i\r\n\r\nx\r\n" * 50 + b"--i--"
    )
    raw = (
        HEADER
        + b"Content-Type: multipart/mixed; boundary=o\r\n\r\n"
        + b"".join(b"--o\r\n" + inner + b"\r\n" for _ in range(400))
        + b"--o--\r\n"
    )
    structure = scan_structure(raw)
    assert assert_consistent(raw, structure) <= MAX_PARTS


def test_defects_are_deduplicated_and_capped():
    raw = b"".join(b"junk line %d\r\n" % i for i in range(50_000)) + b"\r\nbody"
    parsed = parse_message(raw)
    assert len(parsed.defects) == len(set(parsed.defects)) <= 100


def test_the_mime_package_imports_nothing_from_django():
    code = (
        "import sys, mailcore.mime.parse, mailcore.mime.structure, mailcore.mime.headers;"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'django'], 'django imported'"
    )
    root = Path(__file__).resolve().parent.parent.parent
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)
