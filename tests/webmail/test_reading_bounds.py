"""The sanitiser under pressure and for real newsletters: deep nesting and big documents stay
within a time budget, relative URLs never point at the webmail, ``<style>`` blocks survive
without anything that loads, and the attachment list shows what a person attached (decoded
sizes, no images the HTML shows itself)."""

import base64
import re
from email.message import EmailMessage

import pytest

from mailcore.mime.structure import scan_structure as parse_structure
from mailcore.models import Message
from mailcore.services.delivery import deliver_message
from tests.factories import make_message
from webmail import mailcss, reading

HTML = {"type": "text", "subtype": "html"}


def frame_of(raw: bytes) -> str:
    structure = parse_structure(raw)
    return reading.frame_html(raw, structure)


def test_fifty_thousand_nested_divs_render_within_two_seconds():
    raw = make_message(subject="Deep", html="<div>" * 50000 + "deep text" + "</div>" * 50000)
    frame = frame_of(raw)
    assert "deep text" in frame
    assert frame.count("<div>") <= reading.MAX_DEPTH


def test_a_flood_of_closing_tags_and_a_huge_document_stay_within_budget():
    assert reading.bound_depth("</div>" * 100000 + "<p>" * 100000).count("<p>") <= reading.MAX_DEPTH
    raw = make_message(subject="Big", html="<div><b>x</b></div>" * 150000)
    frame = frame_of(raw)
    assert len(frame) < reading.MAX_HTML_BYTES * 2


def test_nesting_within_the_bound_is_kept_as_sent():
    markup = "<table><tr><td>" * 20 + "x" + "</td></tr></table>" * 20
    assert reading.bound_depth(markup) == markup


def test_relative_urls_are_dropped_and_anchors_and_absolute_links_kept():
    clean = reading.sanitize_html(
        '<a href="/logout/">a</a><a href="settings/">b</a><a href="//evil.test/">c</a>'
        '<a href="#part2">d</a><a href="https://example.org/x">e</a>'
        '<img src="/static/x.png"><a href="mailto:x@example.org">f</a>', b"", HTML).html
    hrefs = re.findall(r'href="([^"]*)"', clean)
    assert hrefs == ["#part2", "https://example.org/x", "mailto:x@example.org"]
    assert "/static/" not in clean


def test_style_blocks_keep_layout_and_lose_everything_that_loads():
    markup = (
        "<style>.title{color:#c00;font-size:22px;background:url(https://t.evil.invalid/p.gif)}"
        "@import url(https://evil.invalid/a.css);"
        "@font-face{font-family:x;src:url(https://evil.invalid/f.woff)}"
        "@media (max-width:600px){.col{width:100%!important;background:#eee}}"
        "td{padding:4px;behavior:url(x.htc)} p{color:expression(alert(1))}"
        ".bg{background-image:image-set('a.png' 1x)} .esc{color:\\72 ed}"
        "</style><h1 class=\"title\">News</h1><td class=\"col\">x</td>"
    )
    result = reading.sanitize_html(markup, b"", HTML)
    assert 'class="title"' in result.html and "<style" not in result.html
    css = result.css
    assert ".title{color:#c00;font-size:22px}" in css
    assert "@media (max-width:600px){.col{width:100% !important;background:#eee}}" in css
    assert "td{padding:4px}" in css
    for bad in ("url(", "@import", "@font-face", "expression", "image-set", "\\", "behavior"):
        assert bad not in css


def test_a_style_block_cannot_close_itself_early():
    raw = make_message(subject="Escape", html=(
        '<style>p{font-family:"</style><img src=x onerror=alert(1)>"}</style><p>hi</p>'))
    frame = frame_of(raw)
    head, body = frame.split("</head>", 1)
    assert "onerror" not in frame
    assert head.count("<style>") <= 2
    assert all("<" not in css for css in re.findall(r"<style>(.*?)</style>", head, re.S))


def test_the_frame_applies_the_mail_css_after_ours():
    raw = make_message(subject="Styled", html="<style>h1{color:red}</style><h1>Hi</h1>")
    frame = frame_of(raw)
    assert frame.index("h1{color:red}") > frame.index("body{font:")


def test_declarations_keep_only_allowed_properties():
    allowed = {"color", "margin"}
    assert mailcss.declarations("color: red; position: fixed; margin: 0 auto", allowed) == \
        "color:red;margin:0 auto"
    assert mailcss.declarations("color: rgb(1,2,3); margin: attr(x)", allowed) == \
        "color:rgb(1,2,3)"


def newsletter_with_inline_image() -> bytes:
    msg = EmailMessage()
    msg["From"] = "News <news@remote.test>"
    msg["To"] = "demo@example.test"
    msg["Subject"] = "Newsletter"
    msg.set_content("text version")
    msg.add_alternative('<p>Logo: <img src="cid:logo@news"></p>', subtype="html")
    html_part = msg.get_payload()[1]
    html_part.add_related(b"\x89PNG\r\n\x1a\n" + b"\0" * 100, maintype="image", subtype="png",
                          cid="<logo@news>")
    msg.add_attachment(b"A" * 3000, maintype="application", subtype="pdf",
                       filename="report.pdf")
    return msg.as_bytes()


def test_inline_cid_images_are_not_attachments_and_sizes_are_decoded():
    raw = newsletter_with_inline_image()
    structure = parse_structure(raw)
    found = reading.attachments(structure, raw)
    assert [a.filename for a in found] == ["report.pdf"]
    assert found[0].size == 3000
    # Without the bytes, the estimate from the structure is close.
    estimate = reading.attachments(structure)[0].size
    assert abs(estimate - 3000) < 100
    assert 'src="data:image/png;base64,' in reading.frame_html(raw, structure)


@pytest.mark.django_db
def test_the_reading_pane_lists_the_decoded_size_and_no_inline_image(web, mailbox):
    result = deliver_message(newsletter_with_inline_image(), [mailbox.address])
    message = Message.objects.get(pk=result.delivered[0].message_pk)
    html = web.get(f"/m/{message.pk}/").content.decode()
    section = re.search(r'class="attachments".*?</section>', html, re.S).group(0)
    assert "report.pdf" in section and "2.9\xa0KB" in section
    assert "part-" not in section and "image/png" not in section
    assert base64.b64encode(b"A" * 3000).decode()[:20] not in html
