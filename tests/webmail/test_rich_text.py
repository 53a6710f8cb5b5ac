"""Rich-text compose (issue 17, part 4): cleaning on the server, the text/plain alternative,
pictures inline, refusals that lose nothing, replies quoting the HTML original, and a message
read back over IMAP."""

import base64
import email
import imaplib
from email import policy

import pytest

from mailcore.mime.html_text import html_to_plain
from tests.conftest import PASSWORD
from tests.factories import make_message
from tests.webmail.test_compose import fields, new, release_and_deliver
from webmail import rich_text
from webmail.models import Composition, WebmailSettings

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAcCBlCwAAAABJRU5ErkJggg==")
RICH = ('<p>Hello <strong>Bob</strong>, the <a href="https://plan.test/x">plan</a>:</p>'
        '<ol><li>eat</li><li>sleep</li></ol><blockquote>quoted</blockquote>'
        f'<p><img src="data:image/png;base64,{base64.b64encode(PNG).decode()}"></p>')


def rich_send(web, cid, body_html, **kwargs):
    data = fields(to="bob@example.test", subject="Rich", body="ignored", body_html=body_html,
                  rich_active="1", action="send", **kwargs)
    return web.post(f"/compose/{cid}/", data)


@pytest.fixture
def rich_prefs(mailbox):
    return WebmailSettings.objects.create(mailbox=mailbox, compose_html=True,
                                          signature="Demo\nexample.test")


def test_the_text_alternative_keeps_structure_links_and_quotes():
    assert html_to_plain(RICH) == (
        "Hello *Bob*, the plan <https://plan.test/x>:\n\n1. eat\n2. sleep\n\n> quoted\n\n"
        "[image: picture]\n")


@pytest.mark.parametrize("markup, complaint", [
    ("<p>hi</p><script>alert(1)</script>", "<script>"),
    ('<p><img src="x" onerror="alert(1)"></p>', "onerror handler"),
    ('<p><a href="javascript:alert(1)">x</a></p>', "javascript: link"),
    ("<iframe src='https://evil.test'></iframe>", "<iframe>"),
])
def test_active_content_is_refused_with_a_reason(markup, complaint):
    with pytest.raises(rich_text.RichTextError, match=complaint):
        rich_text.to_mime(markup)


def test_a_picture_over_the_limit_is_refused():
    big = base64.b64encode(b"\x89PNG" + b"\0" * (rich_text.MAX_INLINE_IMAGE + 1)).decode()
    with pytest.raises(rich_text.RichTextError, match="the limit is 5 MB"):
        rich_text.to_mime(f'<p><img src="data:image/png;base64,{big}"></p>')


def test_new_messages_start_rich_with_the_signature_only_when_chosen(web, mailbox, rich_prefs):
    cid = new(web)
    composition = Composition.objects.get(pk=cid)
    assert composition.rich and "<p>-- <br>Demo<br>example.test</p>" in composition.body_html
    html = web.get(f"/compose/{cid}/").content.decode()
    assert 'id="rich-editor"' in html and 'name="rich_active"' in html
    rich_prefs.compose_html = False
    rich_prefs.save()
    assert not Composition.objects.get(pk=new(web)).rich


def test_a_script_is_refused_at_send_and_everything_typed_is_kept(web, mailbox, rich_prefs):
    cid = new(web)
    markup = "<p>Keep <b>this</b></p><script>steal()</script>"
    response = rich_send(web, cid, markup, cc="carol@remote.test")
    assert response.status_code == 400
    assert "contains &lt;script&gt;, which cannot be sent" in response.content.decode()
    composition = Composition.objects.get(pk=cid)
    assert composition.body_html == markup and composition.cc == "carol@remote.test"
    from mailcore.models import OutboundMessage

    assert not OutboundMessage.objects.exists()


def test_a_rich_message_arrives_as_alternative_with_an_inline_picture(
        web, mailbox, make_mailbox, rich_prefs, imap_listener):
    make_mailbox("bob@example.test")
    cid = new(web)
    assert rich_send(web, cid, RICH).status_code == 302
    release_and_deliver()
    host, port = imap_listener
    with imaplib.IMAP4(host, port) as imap:
        imap.login("bob@example.test", PASSWORD)
        imap.select("INBOX")
        _, data = imap.fetch("1", "(RFC822)")
    message = email.message_from_bytes(data[0][1], policy=policy.default)
    assert message.get_content_type() == "multipart/alternative"
    plain, related = message.get_payload()
    assert plain.get_content_type() == "text/plain"
    assert plain.get_content().startswith("Hello *Bob*, the plan <https://plan.test/x>:")
    assert related.get_content_type() == "multipart/related"
    html_part, image = related.get_payload()
    cid_value = image["Content-ID"].strip("<>")
    assert f'src="cid:{cid_value}"' in html_part.get_content()
    assert "<ol><li>eat</li><li>sleep</li></ol>" in html_part.get_content()
    assert image.get_content() == PNG and image.get_content_type() == "image/png"


def test_a_reply_quotes_the_html_original_cleaned(web, mailbox, deliver, rich_prefs):
    original = deliver(raw=make_message(
        subject="Menu", body="plain", html='<p>Soup <b>today</b></p><img src="https://track.test/p.gif">'
        '<script>alert(1)</script>'))
    response = web.post(f"/m/{original.pk}/reply/")
    composition = Composition.objects.latest("pk")
    assert response.status_code == 302 and composition.rich
    assert "<blockquote><p>Soup <b>today</b></p>" in composition.body_html
    assert "track.test" not in composition.body_html and "script" not in composition.body_html
    assert "wrote:" in composition.body_html


def test_without_the_editor_running_the_plain_text_is_sent(web, mailbox, rich_prefs):
    cid = new(web)
    data = fields(to="bob@remote.test", subject="x", body="typed without script",
                  body_html="<p>stale</p>", action="save")
    web.post(f"/compose/{cid}/", data)
    composition = Composition.objects.get(pk=cid)
    assert not composition.rich and composition.body == "typed without script"


def test_the_format_setting_defaults_to_plain_text_and_switches(web, mailbox):
    assert 'id="format-plain" checked' in web.get("/settings/").content.decode()
    response = web.post("/settings/rich-text/", {"compose_html": "rich"}, follow=True)
    assert "written in rich text." in response.content.decode()
    assert WebmailSettings.objects.get(mailbox=mailbox).compose_html
    web.post("/settings/rich-text/", {"compose_html": "plain"})
    assert not WebmailSettings.objects.get(mailbox=mailbox).compose_html
    assert web.get("/settings/rich-text/").status_code == 405
