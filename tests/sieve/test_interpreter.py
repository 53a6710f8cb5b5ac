"""The interpreter on its own: scripts in, typed actions out (RFC 5228 and extensions)."""

from datetime import UTC, datetime

import pytest

from mailcore.sieve.actions import Discard, FileInto, Keep, Redirect, Reject, Vacation
from mailcore.sieve.compile import compile_script
from mailcore.sieve.grammar import SieveSyntaxError
from mailcore.sieve.interpreter import Envelope, Environment, run_script

MESSAGE = (
    b"Return-Path: <alice@remote.test>\r\n"
    b"X-Spam-Score: 9.5\r\n"
    b"From: Alice <alice@remote.test>\r\n"
    b"To: bob@example.test, Carol <carol@example.test>\r\n"
    b"Subject: =?utf-8?q?Caf=C3=A9?= meeting [lists]\r\n"
    b"List-Id: <dev.lists.remote.test>\r\n"
    b"Date: Tue, 01 Dec 2026 10:30:00 +0100\r\n"
    b"Message-ID: <m1@remote.test>\r\n"
    b"Received: from a by b; Tue, 01 Dec 2026 10:30:00 +0100\r\n"
    b"Received: from c by d; Tue, 01 Dec 2026 10:29:00 +0100\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hello Bob,\r\nthe budget is 1200 euros.\r\n"
)


def run(text, raw=MESSAGE, **env):
    envelope = Envelope("alice@remote.test", "bob+tag@example.test")
    return run_script(compile_script(text), raw, envelope, Environment(**env))


def test_no_script_action_means_implicit_keep():
    assert run("").actions == [Keep()]


def test_fileinto_cancels_implicit_keep_and_copy_does_not():
    out = run('require "fileinto"; if header :contains "subject" "café" { fileinto "Cafe"; }')
    assert out.actions == [FileInto("Cafe")]
    out = run('require ["fileinto", "copy", "mailbox"]; fileinto :copy :create "A";')
    assert out.actions == [Keep(), FileInto("A", create=True)]


def test_address_envelope_and_parts():
    out = run('require ["envelope", "fileinto"];'
              'if allof (address :domain "from" "REMOTE.test",'
              ' envelope :localpart "to" "bob+tag", address :all :is "to" "carol@example.test")'
              ' { discard; }')
    assert out.actions == [Discard()]


def test_matches_sets_match_variables_without_backtracking():
    out = run('require ["variables", "fileinto"];'
              'if header :matches "list-id" "<*.lists.*>" { fileinto "Lists/${1}"; }')
    assert out.actions == [FileInto("Lists/dev")]


def test_set_modifiers_and_string_test():
    out = run('require ["variables", "fileinto"]; set :upperfirst "x" "hello";'
              'set :length "n" "${x}"; if string :is "${x}-${n}" "Hello-5" { fileinto "ok"; }')
    assert out.actions == [FileInto("ok")]


def test_imap4flags_internal_variable_and_explicit_flags():
    out = run('require ["imap4flags", "fileinto", "copy"]; addflag "\\\\Seen"; addflag "$Work";'
              'removeflag "$work"; if hasflag "\\\\seen" { fileinto :copy :flags "\\\\Flagged" "F"; }')
    assert out.actions == [Keep(("\\Seen",)), FileInto("F", ("\\Flagged",))]


def test_relational_and_ascii_numeric():
    out = run('require ["relational", "comparator-i;ascii-numeric", "fileinto"];'
              'if header :count "ge" :comparator "i;ascii-numeric" "received" "2"'
              ' { fileinto "two"; }')
    assert out.actions == [FileInto("two")]


def test_body_text_contains():
    out = run('require ["body", "fileinto"]; if body :text :contains "budget" { fileinto "B"; }')
    assert out.actions == [FileInto("B")]


def test_date_and_index():
    out = run('require ["date", "index", "relational", "fileinto"];'
              'if allof (date :zone "+0000" "date" "hour" "09",'
              ' header :index 1 :last :contains "received" "from c")'
              ' { fileinto "D"; }')
    assert out.actions == [FileInto("D")]
    out = run('require ["date", "relational", "fileinto"];'
              'if currentdate :value "ge" "date" "2027-01-01" { fileinto "late"; }',
              now=datetime(2027, 2, 1, tzinfo=UTC))
    assert out.actions == [FileInto("late")]


def test_spamtest_scales_the_verdict_against_the_reject_threshold():
    # RFC 5235: 1 (not spam) .. 10 (at the engine's reject threshold); "0" untested.
    junk = ('require ["spamtest", "relational", "comparator-i;ascii-numeric", "fileinto"];'
            'if spamtest :value "ge" :comparator "i;ascii-numeric" "6" { fileinto "Junk"; }')
    assert run(junk, spam=lambda: (4.0, 15.0)).actions == [Keep()]  # 1 + round(9 * 4/15) = 3
    assert run(junk, spam=lambda: (9.5, 10.0)).actions == [FileInto("Junk")]
    assert run(junk).actions == [Keep()]  # the header alone is not trusted by the interpreter
    percent = ('require ["spamtestplus", "relational", "comparator-i;ascii-numeric"];'
               'if spamtest :percent :value "eq" :comparator "i;ascii-numeric" "%s" { discard; }')
    assert run(percent % "0").actions == [Discard()]
    assert run(percent % "50", spam=lambda: (3.0, 6.0)).actions == [Discard()]
    assert run(percent % "100", spam=lambda: (40.0, 6.0)).actions == [Discard()]
    assert run(percent % "0", spam=lambda: (-2.0, 6.0)).actions == [Discard()]


def test_vacation_redirect_reject():
    out = run('require "vacation"; vacation :days 3 :subject "Away" "Back soon";')
    assert out.actions == [Keep(), Vacation("Back soon", "Away", period=3 * 86400)]
    assert run('redirect "x@elsewhere.test";').actions == [Redirect("x@elsewhere.test")]
    assert run('require "reject"; reject "no thanks";').actions == [Reject("no thanks")]


def test_reject_with_keep_is_an_error_and_keeps():
    out = run('require "reject"; keep; reject "no";')
    assert out.actions == [Keep()] and "reject" in out.error


def test_editheader_changes_the_stored_copy():
    out = run('require "editheader"; addheader "X-Sorted" "yes"; deleteheader "list-id";')
    assert out.raw.startswith(b"X-Sorted: yes\r\n")
    assert b"List-Id" not in out.raw and out.raw.endswith(b"1200 euros.\r\n")


def test_step_budget_stops_a_huge_script_and_keeps():
    rule = 'if header :contains ["subject", "from", "to"] ["zz", "zy", "zx", "zw"] { keep; }\n'
    out = run(rule * 2000)
    assert out.actions == [Keep()] and "too much work" in out.error


def test_hostile_patterns_cost_linear_time():
    # A backtracking matcher would not finish within the test timeout (900 characters, eight
    # stars); the linear one answers at once. No timing is asserted.
    raw = b"Subject: " + b"a" * 900 + b"\r\n\r\nx"
    out = run('if header :matches "subject" "*a*a*a*a*a*a*a*a*b" { discard; }', raw=raw)
    assert out.actions == [Keep()] and not out.error


@pytest.mark.parametrize("script, line, words", [
    ('if header "subject" "x" {\n  fileinto "a";\n}', 2, "fileinto"),
    ('require "regex";', 1, "unsupported"),
    ('keep;\nrequire "fileinto";', 2, "require"),
    ('if true {\n keep;\n', 2, "missing"),
    ('\n\nelse { keep; }', 3, "follow"),
    ('if header :is :contains "a" "b" { }', 1, "conflicting"),
    ('"unterminated', 1, "unterminated"),
    ('require "relational"; if header :count "xx" "a" "1" {}', 1, ":count"),
])
def test_syntax_errors_carry_their_line(script, line, words):
    with pytest.raises(SieveSyntaxError) as info:
        compile_script(script)
    assert info.value.line == line and words in info.value.message


def test_multiline_strings():
    out = run('require "vacation";\nvacation text:\nLine one\n..dot\n.\n;')
    assert out.actions[1].reason == "Line one\r\n.dot\r\n"


def test_later_tests_see_header_edits():
    out = run('require ["editheader", "fileinto"]; if header :contains "list-id" "dev" {'
              ' deleteheader "list-id"; } if not header :contains "list-id" "dev" {'
              ' addheader "X-Seen" "no list"; } if header :is "x-seen" "no list" {'
              ' fileinto "edited"; }')
    assert out.actions == [FileInto("edited")]


def test_flags_that_are_not_imap_atoms_are_dropped():
    out = run('require ["imap4flags", "variables"];'
              'if header :matches "subject" "*" { addflag "${1}"; } addflag "ok$1 \\\\Seen";')
    assert out.actions == [Keep(("meeting", "ok$1", "\\Seen"))]  # not "Café", "[lists]"


def test_a_big_body_against_many_keys_runs_out_of_budget_and_keeps():
    raw = b"Subject: big\r\n\r\n" + b"word " * 200_000
    keys = ", ".join(f'"needle{i}"' for i in range(500))
    out = run(f'require "body"; if body :raw :contains [{keys}] {{ discard; }}', raw=raw)
    assert out.actions == [Keep()] and "too much work" in out.error
