"""Property/fuzz tests of the parsers on their own (issue 12): whatever the bytes, the IMAP,
POP3, ManageSieve and Sieve parsers return a typed result or raise their protocol's parse error
(which the listener answers with BAD, -ERR or NO), and the MIME scanner never raises and keeps
every offset inside the message. Each input is bounded in time by the profile's deadline."""

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from mailcore.mime.parse import parse_message
from mailcore.mime.structure import iter_parts, scan_structure
from mailcore.protocols.imap.lexer import ParseError as ImapParseError
from mailcore.protocols.imap.lexer import decode_mailbox, encode_mailbox
from mailcore.protocols.imap.parser import command_name, literal_request, parse_command
from mailcore.protocols.managesieve.parser import ParseError as SieveProtocolError
from mailcore.protocols.managesieve.parser import Partial, finish, tokenize_line
from mailcore.protocols.pop3.state import Pop3Error
from mailcore.protocols.pop3.state import parse_command as pop3_parse
from mailcore.sieve.compile import compile_script
from mailcore.sieve.grammar import SieveSyntaxError
from tests.fuzz.conftest import examples

# --- IMAP (RFC 3501 §9 grammar) --------------------------------------------------------------

IMAP_VERBS = [
    "CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "AUTHENTICATE", "LOGIN", "SELECT", "EXAMINE",
    "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE", "LIST", "LSUB", "STATUS",
    "APPEND", "CHECK", "CLOSE", "EXPUNGE", "SEARCH", "FETCH", "STORE", "COPY", "MOVE", "UID",
    "IDLE", "ENABLE", "ID", "NAMESPACE", "UNSELECT", "XYZZY",
]
IMAP_TOKENS = [
    "1", "2:4", "*", "1:*", "4294967295", "0", "1,3:5,*", "INBOX", '"INBOX"', '""', '"a\\"b"',
    "%", "*X*", "(", ")", "()", "(\\Seen \\Deleted)", "\\Flagged", "FLAGS", "+FLAGS.SILENT",
    "BODY[]", "BODY.PEEK[HEADER.FIELDS (Subject From)]", "BODY[1.2.MIME]<0.100>", "BODY[TEXT]",
    "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE", "(UID FLAGS)", "CHARSET", "UTF-8", "ALL",
    "UNSEEN", "SUBJECT", "OR", "NOT", "SINCE", "1-Feb-2024", '"17-Jul-1996 02:44:25 -0700"',
    "(CONDSTORE)", "(CHANGEDSINCE 5)", "(QRESYNC (1 2 1:5))", "MODSEQ", "UNCHANGEDSINCE",
    "PLAIN", "=", "AGVtbwBw", "{3}\r\nabc", "{0}\r\n", "{5+}\r\nhello", "&AOk-", "&-", "&Jjo",
    "NIL", "(MESSAGES UIDNEXT)", "RETURN", "(SUBSCRIBED)", "[", "]", "<", ">", "\x00", "\xff",
]
imap_words = st.one_of(
    st.sampled_from(IMAP_TOKENS),
    st.text(alphabet=string.printable, max_size=12),
    st.binary(max_size=8).map(lambda b: b.decode("latin-1")),
)
imap_lines = st.builds(
    lambda tag, uid, verb, args: (
        f"{tag} {'UID ' if uid else ''}{verb}" + "".join(" " + a for a in args)
    ).encode("latin-1", "replace"),
    st.sampled_from(["a1", "A001", "*", "+", "x.y", "", "t(", "0"]),
    st.booleans(),
    st.sampled_from(IMAP_VERBS),
    st.lists(imap_words, max_size=8),
)


@settings(max_examples=examples(400))
@given(st.one_of(imap_lines, st.binary(max_size=200)))
def test_the_imap_parser_returns_a_command_or_a_parse_error(line):
    try:
        command = parse_command(line)
    except ImapParseError:
        pass
    else:
        assert line.startswith(command.tag.encode() + b" ")
        assert command.name.isupper()
    named = command_name(line)
    assert named is None or isinstance(named[0], str)
    request = literal_request(line + b"\r\n")
    assert request is None or request[0] >= 0


@settings(max_examples=examples(300))
@given(st.binary(max_size=60))
def test_mailbox_names_decode_or_fail_with_a_parse_error_and_round_trip(raw):
    try:
        name = decode_mailbox(raw)
    except ImapParseError:
        return
    assert decode_mailbox(encode_mailbox(name).encode()) == name


# --- POP3 (RFC 1939 §3) --------------------------------------------------------------------------

POP3_VERBS = ["USER", "PASS", "APOP", "AUTH", "STLS", "CAPA", "STAT", "LIST", "RETR", "DELE",
              "NOOP", "RSET", "QUIT", "TOP", "UIDL", "user", "XTND"]


@settings(max_examples=examples(300))
@given(st.one_of(
    st.builds(lambda v, a: (v + a).encode("latin-1", "replace"), st.sampled_from(POP3_VERBS),
              st.text(alphabet=string.printable + "\x00\x7f\xe9", max_size=40)),
    st.binary(max_size=100),
))
def test_the_pop3_parser_returns_a_known_verb_or_a_pop3_error(line):
    try:
        command = pop3_parse(line)
    except Pop3Error as error:
        assert error.reply.startswith(b"-ERR ") and error.reply.endswith(b"\r\n")
        assert b"\r" not in error.reply[:-2] and b"\n" not in error.reply[:-2]
    else:
        assert command.verb in {v.upper() for v in POP3_VERBS if v != "XTND"}


# --- ManageSieve (RFC 5804 §4) -------------------------------------------------------------------

@settings(max_examples=examples(300))
@given(st.lists(st.one_of(
    st.sampled_from([b'PUTSCRIPT "a" {5+}', b"AUTHENTICATE \"PLAIN\"", b'"x\\"y"', b"{3}",
                     b"LOGOUT", b"CAPABILITY", b'HAVESPACE "s" 100', b'"unterminated',
                     b"\\", b"12", b'"\\q"', b"{99999999999+}"]),
    st.binary(max_size=40),
), min_size=1, max_size=4))
def test_the_managesieve_parser_tokenizes_or_raises_its_parse_error(lines):
    partial = Partial()
    try:
        for line in lines:
            partial = tokenize_line(line, partial)
            if partial.literal is not None:
                assert partial.literal >= 0
                partial.tokens.append(b"x" * min(partial.literal, 16))
        command = finish(partial)
    except SieveProtocolError:
        return
    assert command.name and command.name == command.name.upper()


# --- Sieve (RFC 5228 §8 grammar) -----------------------------------------------------------------

SIEVE_TOKENS = [
    "require", '["fileinto", "vacation", "envelope", "variables"]', ";", "if", "elsif", "else",
    "{", "}", "(", ")", "[", "]", ",", "header", ":contains", ":is", ":matches", ":regex",
    '"Subject"', '"spam*"', "fileinto", '"Junk"', "stop", "keep", "discard", "redirect",
    '"a@b.test"', "allof", "anyof", "not", "true", "false", "size", ":over", "100K", "vacation",
    ":days", "7", "text:\r\nhello\r\n.\r\n", "# comment\r\n", "/* block */", "/* open",
    '"unterminated', "${var}", "set", '"x"', "exists", "address", ":all", ":localpart", "\\",
]


@settings(max_examples=examples(300))
@given(st.one_of(
    st.lists(st.sampled_from(SIEVE_TOKENS), max_size=30).map(" ".join),
    st.text(max_size=200),
))
def test_the_sieve_compiler_compiles_or_raises_a_syntax_error(text):
    try:
        compile_script(text)
    except SieveSyntaxError:
        pass


# --- MIME (RFC 2045/2046 structure) ------------------------------------------------------------

header_names = st.sampled_from(["Content-Type", "Content-Transfer-Encoding", "Subject", "From",
                                "Content-Disposition", "MIME-Version", "Date", "To", "X"])
header_values = st.one_of(
    st.sampled_from([
        'multipart/mixed; boundary="b"', "multipart/alternative; boundary=b",
        "message/rfc822", "text/plain; charset=utf-8", "text/html; charset=\"x", "base64",
        "quoted-printable", 'attachment; filename="a.txt"', "=?utf-8?b?w6k=?=", "=?x?q?_?=",
        "Mon, 1 Jan 2024 00:00:00 +0000", "not a date", "a@b.test, <broken", "",
    ]),
    st.text(max_size=30),
)
mime_lines = st.one_of(
    st.builds(lambda n, v: f"{n}: {v}", header_names, header_values),
    st.sampled_from(["", "--b", "--b--", "--", " folded", "\tfolded", "=E9=", "QUJD", "."]),
    st.text(max_size=40),
)
messages = st.builds(
    lambda lines, sep: sep.join(lines).encode("utf-8", "surrogateescape"),
    st.lists(mime_lines, max_size=40),
    st.sampled_from(["\r\n", "\n", "\r"]),
)


@settings(max_examples=examples(300))
@given(st.one_of(messages, st.binary(max_size=400)))
def test_the_mime_scanner_never_raises_and_keeps_offsets_inside_the_message(raw):
    structure = scan_structure(raw)
    for part in iter_parts(structure):
        assert 0 <= part["header_start"] <= part["body_start"] <= part["body_end"] <= len(raw)
        assert part["size"] == part["body_end"] - part["body_start"]
    parsed = parse_message(raw)
    assert isinstance(parsed.subject, str) and isinstance(parsed.preview, str)
