"""View tests for the webmail pages, with and without htmx, including isolation between users."""

import re

import pytest
from django.test import Client

from mailcore.models import Folder, LoginThrottle, Message
from mailcore.services.folders import create_folder
from tests.conftest import PASSWORD
from tests.webmail.conftest import HX
from webmail.models import TrustedSender, WebmailSettings

pytestmark = pytest.mark.django_db


# --- Login, logout, headers ---------------------------------------------------------------------


def test_login_page_renders_a_form_with_csrf_and_strict_csp(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert b"csrfmiddlewaretoken" in response.content
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


def test_login_with_the_right_password_opens_the_inbox(mailbox, client):
    response = client.post(
        "/login/", {"address": "Demo@Example.test", "password": PASSWORD}, follow=True
    )
    assert response.status_code == 200
    assert b'id="message-list"' in response.content
    assert b"Inbox" in response.content


def test_login_with_a_wrong_password_is_refused_and_counted_in_the_shared_throttle(
    mailbox, client
):
    response = client.post("/login/", {"address": mailbox.address, "password": "nope"})
    assert response.status_code == 403
    assert b"Wrong address or password" in response.content
    record = LoginThrottle.objects.get(login=mailbox.address, client="127.0.0.1")
    assert (record.attempts, record.failed) == (1, True)


def test_login_is_throttled_after_too_many_failures_even_with_the_right_password(
    mailbox, client, settings
):
    settings.CORREIO_AUTH_MAX_FAILURES = 3
    for _ in range(3):
        client.post("/login/", {"address": mailbox.address, "password": "nope"})
    response = client.post("/login/", {"address": mailbox.address, "password": PASSWORD})
    assert response.status_code == 403
    assert b"Too many failed attempts" in response.content


def test_login_ignores_a_next_url_on_another_site(mailbox, client):
    response = client.post(
        "/login/",
        {"address": mailbox.address, "password": PASSWORD, "next": "https://evil.test/"},
    )
    assert response["Location"] == "/"


def test_session_cookie_is_httponly_and_samesite(mailbox, client):
    client.post("/login/", {"address": mailbox.address, "password": PASSWORD})
    cookie = client.cookies["sessionid"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"


def test_logout_needs_a_post_and_ends_the_session(web):
    assert web.get("/logout/").status_code == 405
    assert web.post("/logout/").status_code == 302
    assert web.get("/").status_code == 302


def test_pages_redirect_to_login_when_signed_out(db, client):
    response = client.get("/f/1/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_htmx_requests_from_an_expired_session_redirect_the_whole_page(db, client):
    response = client.get("/f/1/", **HX)
    assert response["HX-Redirect"].startswith("/login/?next=")


def test_mutations_need_the_csrf_token_htmx_included(mailbox, deliver):
    message = deliver()
    client = Client(enforce_csrf_checks=True)
    client.force_login(mailbox.user)
    client.get("/", follow=True)
    response = client.post("/actions/", {"ids": [message.pk], "action": "read"}, **HX)
    assert response.status_code == 403
    token = client.cookies["csrftoken"].value
    response = client.post(
        "/actions/", {"ids": [message.pk], "action": "read"}, HTTP_X_CSRFTOKEN=token, **HX
    )
    assert response.status_code == 200


def test_the_mail_page_loads_htmx_from_static_files_and_puts_the_csrf_token_on_body(web):
    response = web.get("/", follow=True)
    html = response.content.decode()
    assert '/static/vendor/htmx/htmx.min.js' in html
    assert re.search(r"<body[^>]*hx-headers='\{\"X-CSRFToken\": \"[^\"]+\"\}'", html)
    assert "<script>" not in html and " on" + "click=" not in html
    assert Client().get("/static/vendor/htmx/htmx.min.js").status_code == 200


# --- Folders and the message list ---------------------------------------------------------------


def test_folder_page_lists_messages_newest_first_with_marks(web, inbox, deliver):
    deliver(subject="first one")
    newest = deliver(subject="second <i>", attachments=[("a.pdf", b"%PDF", "application/pdf")])
    html = web.get(f"/f/{inbox.pk}/").content.decode()
    assert html.index("second &lt;i&gt;") < html.index("first one")
    assert f'id="row-{inbox.pk}-{newest.uid}"' in html
    assert "row unread" in html and "Has attachments" in html


def test_folder_list_shows_special_folders_first_then_user_folders_as_a_tree(web, mailbox, inbox):
    create_folder(mailbox, "Projects/Alpha")
    create_folder(mailbox, "Aardvark")
    html = web.get(f"/f/{inbox.pk}/").content.decode()
    names = re.findall(r'<span class="name">([^<]+)</span>', html)
    assert names[:6] == ["Inbox", "Sent", "Drafts", "Trash", "Junk", "Archive"]
    assert names[6:] == ["Aardvark", "Projects", "Alpha"]
    assert "folder depth-1" in html


def test_folder_list_shows_unread_counts(web, inbox, deliver):
    deliver()
    deliver()
    html = web.get(f"/f/{inbox.pk}/").content.decode()
    assert re.search(r'unread: </span>2</span>', html)


def test_htmx_folder_request_returns_the_list_with_folders_and_reader_out_of_band(web, inbox):
    html = web.get(f"/f/{inbox.pk}/", **HX).content.decode()
    assert html.lstrip().startswith('<section id="message-list"')
    assert '<nav id="folder-list" class="pane folders" aria-label="Folders" hx-swap-oob="true"' in html
    assert '<section id="reader"' in html and "<html" not in html


def test_keyset_pagination_walks_the_folder_without_repeats(web, inbox, deliver, settings):
    settings.CORREIO_WEBMAIL_PAGE_SIZE = 5
    for i in range(12):
        deliver(subject=f"message {i:02d}")
    seen: list[str] = []
    url = f"/f/{inbox.pk}/"
    for _ in range(3):
        html = web.get(url).content.decode()
        seen += re.findall(r'<span class="subject">(message \d+)</span>', html)
        more = re.search(r'<li id="more" class="more"><a href="([^"]+)"', html)
        if not more:
            break
        url = more.group(1).replace("&amp;", "&")
    assert seen == [f"message {i:02d}" for i in range(11, -1, -1)]


def test_htmx_next_page_returns_only_rows_and_the_next_link(web, inbox, deliver, settings):
    settings.CORREIO_WEBMAIL_PAGE_SIZE = 5
    for i in range(7):
        deliver(subject=f"m{i}")
    first = web.get(f"/f/{inbox.pk}/").content.decode()
    link = re.search(r'hx-get="([^"]+rows=1)"', first).group(1).replace("&amp;", "&")
    html = web.get(link, **HX).content.decode()
    assert html.count('class="row') == 2 and 'id="more"' not in html
    assert "<section" not in html


def test_list_pages_issue_the_same_few_queries_whatever_their_length(
    web, inbox, deliver, django_assert_max_num_queries
):
    for _ in range(3):
        deliver()
    with django_assert_max_num_queries(12) as small:
        web.get(f"/f/{inbox.pk}/")
    for _ in range(30):
        deliver()
    with django_assert_max_num_queries(len(small.captured_queries)):
        web.get(f"/f/{inbox.pk}/")


def test_list_pages_never_load_message_blobs_or_structures(web, inbox, deliver,
                                                          django_assert_max_num_queries):
    deliver()
    with django_assert_max_num_queries(20) as queries:
        web.get(f"/f/{inbox.pk}/")
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "mailcore_blob" not in sql and '"structure"' not in sql


# --- Reading --------------------------------------------------------------------------------


def test_opening_a_message_marks_it_read_by_a_post_and_updates_counts(web, inbox, deliver):
    message = deliver(subject="read me")
    response = web.get(f"/m/{message.pk}/", **HX)
    assert response.status_code == 200
    message.refresh_from_db()
    assert not message.seen  # GET changes nothing
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="reader"')
    assert f'hx-post="/m/{message.pk}/seen/" hx-trigger="load once"' in html
    assert web.get(f"/m/{message.pk}/seen/").status_code == 405
    response = web.post(f"/m/{message.pk}/seen/", **HX)
    message.refresh_from_db()
    inbox.refresh_from_db()
    assert message.seen and inbox.unseen_count == 0
    html = response.content.decode()
    assert f'id="row-{inbox.pk}-{message.uid}" class="row current"' in html
    assert 'hx-swap-oob="true"' in html
    # Without htmx, back to the message; opened again, nothing more to mark.
    assert web.post(f"/m/{message.pk}/seen/").status_code == 302
    assert b"mark-seen" not in web.get(f"/m/{message.pk}/", **HX).content


def test_message_page_without_htmx_shows_list_and_reader(web, deliver):
    message = deliver(subject="full page")
    html = web.get(f"/m/{message.pk}/").content.decode()
    assert "<html" in html and 'id="message-list"' in html and "full page" in html


def test_plain_text_is_escaped_and_links_are_clickable(web, deliver):
    message = deliver(body="<script>alert(1)</script> see https://example.org/x?a=1&b=2 now\n")
    html = web.get(f"/m/{message.pk}/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<a href="https://example.org/x?a=1&amp;b=2" target="_blank" rel="noopener noreferrer">' in html


def test_html_mail_goes_only_into_the_sandboxed_frame(web, deliver):
    message = deliver(html='<p hx-get="/logout/" hx-trigger="load">Hello <b>bold</b></p>')
    html = web.get(f"/m/{message.pk}/").content.decode()
    assert "Hello <b>bold</b>" not in html and 'hx-trigger="load"' not in html
    assert f'<iframe class="body-frame" src="/m/{message.pk}/body/" sandbox="allow-popups allow-popups-to-escape-sandbox"' in html
    body = web.get(f"/m/{message.pk}/body/")
    assert b"Hello <b>bold</b>" in body.content and b"hx-" not in body.content
    csp = body["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp and "script-src" not in csp
    assert "img-src data:;" in csp
    assert body["X-Frame-Options"] == "SAMEORIGIN"


def test_remote_images_are_blocked_until_shown_and_always_for_a_trusted_sender(web, mailbox, deliver):
    message = deliver(html='<p>pic <img src="https://tracker.test/p.gif"></p>')
    html = web.get(f"/m/{message.pk}/").content.decode()
    assert "Remote images are hidden" in html
    assert b"tracker.test" not in web.get(f"/m/{message.pk}/body/").content
    shown = web.get(f"/m/{message.pk}/body/?images=1")
    assert b"https://tracker.test/p.gif" in shown.content
    assert "img-src data: https: http:" in shown["Content-Security-Policy"]
    web.post(f"/m/{message.pk}/trust/", **HX)
    assert TrustedSender.objects.filter(mailbox=mailbox, address="alice@remote.test").exists()
    assert b"tracker.test" in web.get(f"/m/{message.pk}/body/").content


def test_the_load_remote_images_setting_shows_them_everywhere(web, mailbox, deliver):
    WebmailSettings.objects.create(mailbox=mailbox, load_remote_images=True)
    message = deliver(html='<img src="https://img.test/a.png">')
    assert b"https://img.test/a.png" in web.get(f"/m/{message.pk}/body/").content


def test_inline_cid_images_are_embedded_as_data_urls(web, deliver):
    from email.message import EmailMessage
    from email.policy import SMTP

    msg = EmailMessage()
    msg["From"] = "a@remote.test"
    msg["To"] = "demo@example.test"
    msg["Subject"] = "cid"
    msg.set_content("text")
    msg.add_alternative('<p><img src="cid:logo@x"></p>', subtype="html")
    msg.get_payload()[1].add_related(b"\x89PNG\r\n\x1a\nfake", "image", "png", cid="<logo@x>")
    message = deliver(raw=msg.as_bytes(policy=SMTP))
    body = web.get(f"/m/{message.pk}/body/").content.decode()
    assert 'src="data:image/png;base64,iVBORw0KGgpmYWtl"' in body


def test_attachments_download_with_disposition_nosniff_and_decoded_rfc2231_name(web, deliver):
    message = deliver(attachments=[("résumé <x>.html", b"<script>alert(1)</script>", "text/html")])
    html = web.get(f"/m/{message.pk}/").content.decode()
    assert "résumé &lt;x&gt;.html" in html
    section = re.search(rf'/m/{message.pk}/part/([\d.]+)/', html).group(1)
    response = web.get(f"/m/{message.pk}/part/{section}/")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert "filename*=utf-8''r%C3%A9sum%C3%A9" in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert response.content == b"<script>alert(1)</script>"


def test_a_missing_part_is_not_found(web, deliver):
    message = deliver()
    assert web.get(f"/m/{message.pk}/part/9/").status_code == 404
    assert web.get(f"/m/{message.pk}/part/1.x/").status_code == 404


def test_raw_source_is_plain_text_and_headers_are_shown_on_demand(web, deliver):
    message = deliver(subject="=?utf-8?q?caf=C3=A9_<b>?=")
    raw = web.get(f"/m/{message.pk}/raw/")
    assert raw["Content-Type"].startswith("text/plain") and b"Subject:" in raw.content
    assert raw["X-Content-Type-Options"] == "nosniff"
    download = web.get(f"/m/{message.pk}/raw/?download=1")
    assert download["Content-Disposition"].startswith("attachment")
    html = web.get(f"/m/{message.pk}/?headers=1", **HX).content.decode()
    assert '<th scope="row">Message-ID</th>' in html
    assert "café &lt;b&gt;" in html


def test_conversation_view_groups_the_thread_across_folders(web, mailbox, deliver):
    first = deliver(subject="plan", message_id="<root@remote.test>")
    reply = deliver(subject="Re: plan", in_reply_to="<root@remote.test>",
                    references="<root@remote.test>")
    archive = mailbox.folders.get(role="archive")
    web.post("/actions/", {"ids": [first.pk], "action": "archive"})
    html = web.get(f"/m/{reply.pk}/").content.decode()
    assert "Conversation (2)" in html
    assert '<span class="folder-name">Archive</span>' in html
    assert archive.messages.count() == 1


def test_a_broken_message_still_opens(web, deliver):
    raw = (b"From: =?bogus?x?zz?= <a@b>\r\nSubject: =?utf-8?b?////?=\r\n"
           b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain;"
           b" charset=x-unknown\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!notbase64\r\n")
    message = deliver(raw=raw)
    assert web.get(f"/m/{message.pk}/").status_code == 200
    assert web.get(f"/m/{message.pk}/body/").status_code == 200


# --- Isolation ------------------------------------------------------------------------------


def test_another_users_message_folder_and_attachment_are_not_found(web, other, deliver):
    theirs = deliver(to=other.address, attachments=[("x.txt", b"secret", "text/plain")])
    their_folder = theirs.folder
    for url in (
        f"/m/{theirs.pk}/", f"/m/{theirs.pk}/body/", f"/m/{theirs.pk}/part/2/",
        f"/m/{theirs.pk}/raw/", f"/f/{their_folder.pk}/",
    ):
        assert web.get(url).status_code == 404, url
        assert web.get(url, **HX).status_code == 404, url
    for url in (f"/m/{theirs.pk}/trust/", f"/folders/{their_folder.pk}/rename/",
                f"/folders/{their_folder.pk}/delete/"):
        assert web.post(url, {"name": "x"}).status_code == 404, url
    assert Folder.objects.filter(pk=their_folder.pk, name="INBOX").exists()


def test_actions_on_another_users_messages_change_nothing(web, mailbox, other, deliver):
    theirs = deliver(to=other.address)
    response = web.post("/actions/", {"ids": [theirs.pk], "action": "delete"}, **HX)
    assert b"Select messages first" in response.content
    theirs.refresh_from_db()
    assert theirs.folder.role == "inbox" and not theirs.seen
    mine = deliver()
    their_trash = other.folders.get(role="trash")
    response = web.post("/actions/", {"ids": [mine.pk], "action": "move",
                                      "target": their_trash.pk}, **HX)
    assert response.status_code == 404
    assert their_trash.messages.count() == 0


def test_search_and_live_updates_never_show_another_users_mail(web, other, deliver, inbox):
    deliver(to=other.address, subject="their secret plans")
    html = web.get("/search/?q=secret&scope=all").content.decode()
    assert "their secret plans" not in html
    their_inbox = other.folders.get(role="inbox")
    html = web.get(f"/live/?sig=x&folder={their_inbox.pk}&since=0&uidnext=1").content.decode()
    assert "their secret plans" not in html


# --- Actions --------------------------------------------------------------------------------


def test_mark_unread_read_flag_and_unflag_update_the_row(web, inbox, deliver):
    message = deliver()
    for action, field, value in (("read", "seen", True), ("flag", "flagged", True),
                                 ("unflag", "flagged", False), ("unread", "seen", False)):
        response = web.post("/actions/", {"ids": [message.pk], "action": action,
                                          "folder": inbox.pk}, **HX)
        assert response.status_code == 200
        message.refresh_from_db()
        assert getattr(message, field) is value
        assert f'id="row-{inbox.pk}-{message.uid}"' in response.content.decode()


def test_actions_without_htmx_redirect_back(web, inbox, deliver):
    message = deliver()
    response = web.post("/actions/", {"ids": [message.pk], "action": "flag",
                                      "folder": inbox.pk, "next": f"/f/{inbox.pk}/"})
    assert response.status_code == 302 and response["Location"] == f"/f/{inbox.pk}/"
    message.refresh_from_db()
    assert message.flagged


def test_delete_moves_to_trash_and_from_trash_deletes_for_good(web, mailbox, inbox, deliver):
    message = deliver()
    trash = mailbox.folders.get(role="trash")
    response = web.post("/actions/", {"ids": [message.pk], "action": "delete",
                                      "folder": inbox.pk, "open": message.pk}, **HX)
    html = response.content.decode()
    assert f'<li id="row-{inbox.pk}-{message.uid}" hx-swap-oob="delete">' in html
    assert "Moved 1 message to Trash." in html and "Undo" in html
    assert "The message was moved." in html  # the reader is emptied
    in_trash = trash.messages.get()
    response = web.post("/actions/", {"ids": [in_trash.pk], "action": "delete",
                                      "folder": trash.pk}, **HX)
    assert "Deleted 1 message for good." in response.content.decode()
    assert not Message.objects.filter(mailbox=mailbox).exists()


def test_archive_junk_not_junk_and_move_go_to_their_folders(web, mailbox, inbox, deliver):
    custom = create_folder(mailbox, "Receipts")
    m1, m2, m3 = deliver(), deliver(), deliver()
    web.post("/actions/", {"ids": [m1.pk], "action": "archive"}, **HX)
    web.post("/actions/", {"ids": [m2.pk], "action": "junk"}, **HX)
    web.post("/actions/", {"ids": [m3.pk], "action": "move", "target": custom.pk}, **HX)
    assert mailbox.folders.get(role="archive").messages.count() == 1
    junk = mailbox.folders.get(role="junk")
    assert junk.messages.count() == 1 and custom.messages.count() == 1
    web.post("/actions/", {"ids": [junk.messages.get().pk], "action": "notjunk"}, **HX)
    assert inbox.messages.count() == 1


def test_bulk_actions_apply_to_every_selected_message(web, inbox, deliver):
    messages = [deliver() for _ in range(4)]
    web.post("/actions/", {"ids": [m.pk for m in messages[:3]], "action": "read"}, **HX)
    assert inbox.messages.filter(seen=True).count() == 3
    response = web.post("/actions/", {"ids": [m.pk for m in messages], "action": "archive"},
                        **HX)
    assert "Moved 4 messages to Archive." in response.content.decode()
    assert inbox.messages.count() == 0


def test_undo_moves_the_messages_back(web, inbox, deliver):
    messages = [deliver(subject=f"undo {i}") for i in range(2)]
    response = web.post("/actions/", {"ids": [m.pk for m in messages], "action": "delete",
                                      "folder": inbox.pk}, **HX)
    token = re.search(r'name="token" value="([^"]+)"', response.content.decode()).group(1)
    response = web.post("/actions/undo/", {"token": token, "folder": inbox.pk}, **HX)
    html = response.content.decode()
    assert "Restored 2 messages." in html and "undo 0" in html and "undo 1" in html
    assert inbox.messages.count() == 2
    again = web.post("/actions/undo/", {"token": token, "folder": inbox.pk}, **HX)
    assert "Nothing to undo." in again.content.decode()


def test_undo_without_htmx_redirects_back(web, inbox, deliver):
    message = deliver()
    response = web.post("/actions/", {"ids": [message.pk], "action": "archive",
                                      "folder": inbox.pk}, **HX)
    token = re.search(r'name="token" value="([^"]+)"', response.content.decode()).group(1)
    response = web.post("/actions/undo/", {"token": token, "folder": inbox.pk})
    assert response.status_code == 302
    assert inbox.messages.count() == 1


def test_an_unknown_action_is_answered_with_a_toast(web, deliver):
    message = deliver()
    response = web.post("/actions/", {"ids": [message.pk], "action": "explode"}, **HX)
    assert response.status_code == 200 and b"Choose an action." in response.content


# --- Folder management ------------------------------------------------------------------------


def test_create_rename_and_delete_a_folder(web, mailbox, deliver):
    response = web.post("/folders/new/", {"name": "Work/2024"}, **HX)
    created = Folder.objects.get(mailbox=mailbox, name="Work/2024")
    assert response["HX-Redirect"] == f"/f/{created.pk}/"
    assert Folder.objects.filter(mailbox=mailbox, name="Work").exists()
    response = web.post(f"/folders/{created.pk}/rename/", {"name": "Work/2025"})
    assert response.status_code == 302
    created.refresh_from_db()
    assert created.name == "Work/2025"
    response = web.post(f"/folders/{created.pk}/delete/", **HX)
    assert "HX-Redirect" in response
    assert not Folder.objects.filter(pk=created.pk).exists()


def test_folder_errors_are_shown_not_raised(web, mailbox, inbox):
    create_folder(mailbox, "Taken")
    response = web.post("/folders/new/", {"name": "Taken"}, **HX)
    assert b"already exists" in response.content
    response = web.post("/folders/new/", {"name": "bad*name"}, **HX)
    assert b"cannot be empty or contain" in response.content
    response = web.post(f"/folders/{inbox.pk}/delete/", **HX)
    assert b"Special folders cannot be renamed or deleted" in response.content
    parent = Folder.objects.get(mailbox=mailbox, name="Taken")
    create_folder(mailbox, "Taken/Child")
    response = web.post(f"/folders/{parent.pk}/delete/")
    assert response.status_code == 302
    assert Folder.objects.filter(pk=parent.pk).exists()


# --- Search -----------------------------------------------------------------------------------


def test_search_with_operators_finds_the_right_messages(web, mailbox, inbox, deliver):
    deliver(subject="Quarterly report", sender="Bob <bob@corp.test>", body="numbers inside")
    deliver(subject="Lunch", sender="Carol <carol@corp.test>", body="quarterly lunch plans",
            attachments=[("menu.pdf", b"%PDF", "application/pdf")])
    html = web.get("/search/?q=quarterly&scope=all").content.decode()
    assert "Quarterly report" in html and "Lunch" in html
    html = web.get("/search/?q=from:bob&scope=all").content.decode()
    assert "Quarterly report" in html and "Lunch" not in html
    html = web.get("/search/?q=has:attachment+quarterly&scope=all").content.decode()
    assert "Lunch" in html and "Quarterly report" not in html
    html = web.get(f"/search/?q=subject:lunch&folder={inbox.pk}", **HX).content.decode()
    assert html.lstrip().startswith('<section id="message-list"') and "Lunch" in html


def test_search_in_the_current_folder_or_all_folders(web, mailbox, inbox, deliver):
    message = deliver(subject="findme")
    web.post("/actions/", {"ids": [message.pk], "action": "archive"})
    row = '<span class="subject">findme</span>'
    assert row not in web.get(f"/search/?q=findme&folder={inbox.pk}").content.decode()
    assert row in web.get(f"/search/?q=findme&folder={inbox.pk}&scope=all").content.decode()
    assert row in web.get("/search/?q=findme+in:archive").content.decode()
    assert row not in web.get("/search/?q=findme+in:junk").content.decode()


def test_search_of_odd_input_never_fails(web, deliver):
    deliver()
    for q in ['"unclosed', "from:", "-", "AND OR NOT", "*", "'; drop table x", "larger:abc",
              "before:2024-13-45", "ü" * 500, "NEAR(a b)", "a:b:c"]:
        assert web.get("/search/", {"q": q, "scope": "all"}).status_code == 200, q


# --- Live updates -------------------------------------------------------------------------------


def test_live_poll_answers_204_while_nothing_changed(web, inbox,
                                                     django_assert_max_num_queries):
    html = web.get(f"/f/{inbox.pk}/").content.decode()
    url = re.search(r'<div id="poll" hidden hx-get="([^"]+)"', html).group(1).replace("&amp;", "&")
    with django_assert_max_num_queries(4):
        response = web.get(url, **HX)
    assert response.status_code == 204


def test_live_poll_brings_new_mail_changed_flags_and_removals(web, inbox, deliver):
    kept = deliver(subject="kept")
    gone = deliver(subject="gone")
    html = web.get(f"/f/{inbox.pk}/").content.decode()
    url = re.search(r'<div id="poll" hidden hx-get="([^"]+)"', html).group(1).replace("&amp;", "&")
    new = deliver(subject="brand new")
    web.post("/actions/", {"ids": [kept.pk], "action": "flag"})
    web.post("/actions/", {"ids": [gone.pk], "action": "archive"})
    html = web.get(url, **HX).content.decode()
    assert '<ul hx-swap-oob="afterbegin:#rows">' in html and "brand new" in html
    assert f'id="row-{inbox.pk}-{kept.uid}" class="row unread flagged"' in html
    assert f'<li id="row-{inbox.pk}-{gone.uid}" hx-swap-oob="delete">' in html
    assert 'unread: </span>2</span>' in html  # counts refreshed
    assert f'id="row-{inbox.pk}-{new.uid}"' in html
    assert '<div id="poll" hidden' in html and 'hx-swap-oob="true"' in html


# --- Settings -------------------------------------------------------------------------------


def test_settings_page_saves_display_name_images_and_theme(web, mailbox):
    assert web.get("/settings/").status_code == 200
    response = web.post("/settings/", {"form": "preferences", "display_name": "Demo\r\nX",
                                       "load_remote_images": "on", "theme": "dark"})
    assert response.status_code == 302
    mailbox.refresh_from_db()
    prefs = WebmailSettings.objects.get(mailbox=mailbox)
    assert mailbox.display_name == "Demo X"
    assert prefs.load_remote_images and prefs.theme == "dark" and not prefs.conversation_view
    assert b'data-theme="dark"' in web.get("/settings/").content


def test_password_change_checks_the_current_password_and_keeps_the_session(web, mailbox):
    response = web.post("/settings/", {"form": "password", "current": "wrong",
                                       "new": "a much better passphrase", "confirm": "a much better passphrase"})
    assert response.status_code == 400 and b"Your current password is wrong." in response.content
    response = web.post("/settings/", {"form": "password", "current": PASSWORD,
                                       "new": "a much better passphrase", "confirm": "a much better passphrase"})
    assert response.status_code == 302
    assert web.get("/settings/").status_code == 200  # still signed in
    client = Client()
    assert client.post("/login/", {"address": mailbox.address,
                                   "password": "a much better passphrase"}).status_code == 302


def test_a_weak_new_password_is_refused(web):
    response = web.post("/settings/", {"form": "password", "current": PASSWORD,
                                       "new": "123", "confirm": "123"})
    assert response.status_code == 400 and b"too short" in response.content


# --- Issue 16: the smaller things --------------------------------------------------------------


@pytest.mark.django_db
def test_an_empty_search_finds_nothing_and_says_what_to_type(web, mailbox, deliver):
    deliver(subject="Anything")
    html = web.get("/search/?q=&scope=all").content.decode()
    assert "Anything" not in html and "Type what to look for" in html


@pytest.mark.django_db
def test_results_from_all_folders_say_their_folder(web, mailbox, deliver):
    deliver(subject="Findable thing")
    html = web.get("/search/?q=findable&scope=all", HTTP_HX_REQUEST="true").content.decode()
    assert '<span class="in-folder">Inbox</span>' in html


@pytest.mark.django_db
def test_htmx_responses_carry_the_title_with_the_unread_count(web, mailbox, deliver):
    deliver(subject="Unread one")
    inbox = mailbox.folders.get(role="inbox")
    html = web.get(f"/f/{inbox.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert "<title>(1) Inbox · Correio</title>" in html


@pytest.mark.django_db
def test_an_expired_session_keeps_the_place_for_after_signing_in(client):
    response = client.get("/f/1/", HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="http://testserver/m/5/")
    assert response["HX-Redirect"] == "/login/?next=%2Fm%2F5%2F"
    response = client.get("/m/7/?headers=1")
    assert response["Location"] == "/login/?next=%2Fm%2F7%2F%3Fheaders%3D1"


@pytest.mark.django_db
def test_the_not_found_page_is_styled_and_leads_back(web, settings):
    settings.DEBUG = False
    response = web.get("/m/999999/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "webmail/app.css" in html and "Back to your mail" in html


@pytest.mark.django_db
def test_browser_time_zone_cookie_sets_the_zone_and_junk_is_ignored(web, mailbox, deliver):
    deliver(subject="Zoned", date="Mon, 01 Jan 2024 00:00:00 +0000")
    message = Message.objects.get(subject="Zoned")
    from zoneinfo import ZoneInfo

    expected = message.internal_date.astimezone(ZoneInfo("America/Sao_Paulo"))
    web.cookies["tz"] = "America/Sao_Paulo"
    html = web.get(f"/m/{message.pk}/").content.decode()
    assert expected.strftime("%a, %d %b %Y %H:%M") in html
    for junk in ("../../etc/passwd", "Nowhere/Land", "x" * 300):
        web.cookies["tz"] = junk
        assert web.get(f"/m/{message.pk}/").status_code == 200
