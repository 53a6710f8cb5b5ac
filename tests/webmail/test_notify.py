"""The notification state the page carries, and its opt-in setting (issue 17, part 6)."""

from webmail.models import WebmailSettings


def test_the_page_carries_the_inbox_unread_count_and_no_message_until_opted_in(web, deliver):
    deliver(subject="one")
    deliver(subject="two <b>", sender="Eve <eve@remote.test>")
    html = web.get("/", follow=True).content.decode()
    assert 'data-unseen="2"' in html and "data-newest-uid" not in html
    assert web.get("/settings/notifications/").status_code == 405
    response = web.post("/settings/notifications/", {"notify_new_mail": "on"}, follow=True)
    assert "Notifications on." in response.content.decode()
    assert WebmailSettings.objects.get().notify_new_mail
    html = web.get("/", follow=True).content.decode()
    assert 'data-enabled="1"' in html and 'data-newest-from="Eve"' in html
    assert 'data-newest-subject="two &lt;b&gt;"' in html
    web.post("/settings/notifications/", {})
    assert not WebmailSettings.objects.get().notify_new_mail


def test_the_live_poll_refreshes_the_count(web, deliver):
    deliver()
    page = web.get("/", follow=True)
    sig = page.context["live_sig"]
    deliver()
    html = web.get(f"/live/?sig={sig}", HTTP_HX_REQUEST="true").content.decode()
    assert 'id="notify-state"' in html and 'data-unseen="2"' in html
