"""Print a message or a conversation; previews of pictures and PDFs (issue 17, part 6)."""

import base64

from tests.factories import make_message

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAcCBlCwAAAABJRU5ErkJggg==")
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_printing_a_message_shows_it_cleaned_under_a_strict_policy(web, deliver):
    message = deliver(raw=make_message(
        subject="Invoice", html='<p>Total <b>42</b></p><img src="https://track.test/x.gif">'
        "<script>alert(1)</script>"))
    response = web.get(f"/m/{message.pk}/print/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<p>Total <b>42</b></p>" in html and "track.test" not in html
    assert "alert(1)" not in html
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "https:" not in csp and "frame-ancestors 'none'" in csp
    assert f'href="/m/{message.pk}/print/?auto=1"' in web.get(f"/m/{message.pk}/").content.decode()


def test_printing_a_conversation_prints_every_message_oldest_first(web, deliver):
    first = deliver(raw=make_message(subject="Plan", message_id="<p1@x.test>", body="one\n",
                                     date="Mon, 01 Dec 2025 10:00:00 +0000"))
    deliver(raw=make_message(subject="Re: Plan", message_id="<p2@x.test>", body="two\n",
                             in_reply_to="<p1@x.test>", references="<p1@x.test>",
                             date="Mon, 01 Dec 2025 11:00:00 +0000"))
    html = web.get(f"/m/{first.pk}/print/", {"thread": "1"}).content.decode()
    assert "Conversation, 2 messages" in html
    assert html.index("one") < html.index("two")


def test_pictures_and_pdfs_preview_inline_from_their_own_path(web, deliver):
    message = deliver(raw=make_message(attachments=[
        ("photo.png", PNG, "image/png"), ("doc.pdf", PDF, "application/pdf"),
        ("page.html", b"<script>alert(1)</script>", "text/html"),
        ("fake.png", b"<html><script>alert(1)</script>", "image/png")]))
    html = web.get(f"/m/{message.pk}/").content.decode()
    assert f'<img src="/preview/{message.pk}/2/" alt="photo.png"' in html
    assert f'<iframe src="/preview/{message.pk}/3/" sandbox' in html
    assert f"/preview/{message.pk}/4/" not in html
    image = web.get(f"/preview/{message.pk}/2/")
    assert image.status_code == 200 and image.content == PNG
    assert image["Content-Type"] == "image/png" and image["X-Content-Type-Options"] == "nosniff"
    assert image["Content-Disposition"].startswith("inline")
    pdf = web.get(f"/preview/{message.pk}/3/")
    assert pdf["Content-Type"] == "application/pdf" and pdf.content == PDF
    assert pdf["Content-Security-Policy"].endswith("sandbox")
    assert pdf["Content-Disposition"].startswith("inline")
    assert pdf["X-Frame-Options"] == "SAMEORIGIN"
    assert web.get(f"/preview/{message.pk}/4/").status_code == 404  # HTML: download only
    assert web.get(f"/preview/{message.pk}/5/").status_code == 404  # not the PNG it claims
    assert web.get(f"/preview/{message.pk}/9/").status_code == 404


def test_another_user_can_neither_print_nor_preview(mailbox, deliver, other, client_for):
    message = deliver(raw=make_message(attachments=[("photo.png", PNG, "image/png")]))
    intruder = client_for(other)
    assert intruder.get(f"/m/{message.pk}/print/").status_code == 404
    assert intruder.get(f"/preview/{message.pk}/2/").status_code == 404
