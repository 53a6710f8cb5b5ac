"""Trace headers (RFC 5321 §4.4) and the reply table, as plain functions."""

from mailcore.exceptions import AliasLoop, AuthThrottled, QuotaExceeded, UnknownRecipient
from mailcore.mime.trace import return_path_header, with_return_path
from mailcore.protocols.smtp.replies import TEMPORARY_FAILURE, reply_for
from mailcore.protocols.smtp.trace import (
    count_received,
    received_header,
    with_protocol,
)


def test_only_received_fields_of_the_top_header_block_are_counted():
    raw = (
        b"Received: from a by b; now\r\nRECEIVED : from c by d; now\r\nX-Received: no\r\n"
        b"Subject: x\r\n\r\nReceived: in the body does not count\r\n"
    )
    assert count_received(raw) == 2
    assert count_received(b"Received: x\nreceived: y\n\nReceived: z\n") == 2
    assert count_received(b"Subject: none\r\n\r\nbody") == 0


def test_the_with_keyword_follows_rfc_3848_and_rfc_6531():
    assert with_protocol(esmtp=False, tls=False, auth=False, utf8=False) == "SMTP"
    assert with_protocol(esmtp=True, tls=False, auth=False, utf8=False) == "ESMTP"
    assert with_protocol(esmtp=True, tls=True, auth=False, utf8=False) == "ESMTPS"
    assert with_protocol(esmtp=True, tls=True, auth=True, utf8=False) == "ESMTPSA"
    assert with_protocol(esmtp=True, tls=True, auth=False, utf8=True) == "UTF8SMTPS"


def test_a_hostile_helo_name_cannot_break_or_fold_our_received_field():
    header = received_header(
        helo="evil\r\nBcc: victim@x.test (comment", peer_ip="2001:db8::1",
        hostname="mail.example.test", protocol="ESMTP", queue_id="ABC", recipients=["a@b.test"],
    ).decode()
    lines = header.split("\r\n")
    assert lines[0] == "Received: from evil??Bcc:?victim@x.test??comment ([IPv6:2001:db8::1])"
    assert all(line.startswith("\t") for line in lines[1:-1]) and lines[-1] == ""


def test_the_tls_comment_keeps_balanced_nested_parentheses_and_nothing_that_breaks_out():
    def comment(tls: str) -> str:
        header = received_header(helo="c", peer_ip="192.0.2.1", hostname="h", protocol="ESMTPS",
                                 queue_id="Q", recipients=[], tls=tls).decode()
        return header.split("\r\n")[1]

    text = "using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)"
    assert comment(text) == f"\t({text})"
    # Unbalanced, or a quoted-pair that would escape the closing parenthesis: neutralised.
    assert comment("x) Bcc: y (z") == "\t(x? Bcc: y ?z)"
    assert comment("a (b\\)") == "\t(a (b?))"
    assert comment("a\r\nBcc: b") == "\t(a??Bcc: b)"


def test_return_path_keeps_the_reverse_path_or_the_null_path():
    assert return_path_header("a@b.test") == b"Return-Path: <a@b.test>\r\n"
    assert return_path_header("") == b"Return-Path: <>\r\n"
    assert with_return_path(b"Subject: x\r\n\r\n", "") == b"Return-Path: <>\r\nSubject: x\r\n\r\n"
    ours = b"Return-Path: <a@b.test>\r\nReceived: by us\r\n\r\n"
    assert with_return_path(ours, "c@d.test") == ours


def test_errors_map_to_replies_by_class_and_anything_else_is_a_temporary_failure():
    assert reply_for(UnknownRecipient()).startswith("550 5.1.1 ")
    assert reply_for(QuotaExceeded()).startswith("452 4.2.2 ")
    assert reply_for(AliasLoop()).startswith("554 5.4.6 ")
    # The subclass wins over its base (AuthThrottled is an AuthFailed).
    assert reply_for(AuthThrottled()).startswith("454 4.7.0 ")
    assert reply_for(ZeroDivisionError("secret internals")) == TEMPORARY_FAILURE
    assert "secret" not in TEMPORARY_FAILURE
