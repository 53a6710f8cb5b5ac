"""The hostile-mail corpus (tests/data/hostile, written by tests/data/make_hostile.py) renders
inert on the server side: no script, event handler, active URL or remote resource reaches the
body frame, and no mail markup reaches the page htmx processes. The browser test repeats this
in Chromium and watches for script runs and network requests."""

import re
from pathlib import Path

import pytest

from mailcore.models import Message
from mailcore.services.delivery import deliver_message

CORPUS = sorted((Path(__file__).parent.parent / "data" / "hostile").glob("*.eml"))
SCRIPT_TAGS = re.compile(r"<script\b(?![^>]*src=\"/static/)", re.I)
EVENT_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.I)
DANGEROUS_TAGS = re.compile(
    r"<(script|style|link|meta|base|form|input|button|iframe|frame|object|embed|svg|math|"
    r"video|audio|source|picture|template|noscript)\b", re.I)
REMOTE_LOAD = re.compile(
    r"<[a-z][^>]*\s(src|srcset|background|poster|data)\s*=\s*\"?[^\"> ]*evil\.invalid", re.I)


def test_the_corpus_holds_at_least_forty_messages():
    assert len(CORPUS) >= 40


@pytest.mark.django_db
@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_hostile_message_renders_inert(path, web, mailbox):
    result = deliver_message(path.read_bytes(), [mailbox.address])
    message = Message.objects.get(pk=result.delivered[0].message_pk)
    page = web.get(f"/m/{message.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    # htmx, app.js, notify.js and editor.js only, all our own static files.
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert len(scripts) == 4 and all('src="/static/' in tag for tag in scripts)
    assert not EVENT_HANDLER.search(html)
    assert 'href="javascript' not in html.lower()
    assert 'hx-get="/logout/"' not in html and "hx-on" not in html
    assert not REMOTE_LOAD.search(html)

    body = web.get(f"/m/{message.pk}/body/")
    assert body.status_code == 200
    assert "sandbox" in body["Content-Security-Policy"]
    frame = body.content.decode()
    assert not SCRIPT_TAGS.search(frame)
    assert not EVENT_HANDLER.search(frame)
    head, mail_body = frame.split("</head>", 1)
    assert not DANGEROUS_TAGS.search(mail_body)  # our own style and the mail's are in the head
    sheets = re.findall(r"<style>(.*?)</style>", head, re.S)
    assert len(sheets) in (1, 2) and all("<" not in css for css in sheets)
    assert not re.search(r"url\s*\(|@import|@font-face|expression|\\", "".join(sheets), re.I)
    assert not REMOTE_LOAD.search(frame)
    assert not re.search(r"(href|src)\s*=\s*\"\s*(javascript|vbscript|data):", frame, re.I)
    inside_tags = " ".join(re.findall(r"<[a-z][^>]*>", mail_body, re.I))
    assert "hx-" not in inside_tags and "expression(" not in inside_tags
    assert "url(" not in inside_tags

    for section in re.findall(rf"/m/{message.pk}/part/([\d.]+)/", html):
        download = web.get(f"/m/{message.pk}/part/{section}/")
        assert download["Content-Disposition"].startswith("attachment;")
        assert download["X-Content-Type-Options"] == "nosniff"
        assert "/" not in download["Content-Disposition"].split("filename", 1)[1].replace("*=utf-8''", "")
