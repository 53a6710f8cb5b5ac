"""Writing mail in the webmail: compose (page and pane), validation, header injection refused,
reply / reply-all / forward, drafts saved and reopened, attachments, undo send, send later and
the Outbox, delivery status, autocomplete; every sent message parsed back with the stdlib."""

import email
import re
from datetime import timedelta
from email import policy

import pytest
from django.utils import timezone

from mailcore.blobstore import load_blob
from mailcore.models import Correspondent, Message, OutboundMessage, OutboundRecipient
from mailcore.services.delivery import append_message
from mailcore.services.outbound.admin import due_message_ids
from mailcore.services.outbound.relay import deliver_outbound
from tests.factories import make_message
from tests.outbound.conftest import fresh_transport, remote_mx  # noqa: F401 (fixtures)
from tests.webmail.conftest import HX
from webmail.models import ComposeState, Composition, WebmailSettings

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob(make_mailbox):
    return make_mailbox("bob@example.test")


def new(web, **query) -> int:
    response = web.post("/compose/", query)
    assert response.status_code == 302
    return int(re.search(r"/compose/(\d+)/", response["Location"]).group(1))


def fields(**kwargs) -> dict:
    data = {"from_addr": "demo@example.test", "to": "", "cc": "", "bcc": "", "subject": "",
            "body": ""}
    data.update(kwargs)
    return data


def send(web, cid, *, htmx=True, **kwargs):
    data = fields(**kwargs)
    data.setdefault("action", "send")
    return web.post(f"/compose/{cid}/", data, **(HX if htmx else {}))


def folder_messages(mailbox, role):
    return list(Message.objects.filter(folder__mailbox=mailbox, folder__role=role).order_by("pk"))


def parsed(message):
    return email.message_from_bytes(load_blob(message.blob_id), policy=policy.default)


def release_and_deliver():
    """The undo window is over: make held mail due and run the worker's pass on it."""
    OutboundMessage.objects.update(hold_until=timezone.now() - timedelta(seconds=1))
    OutboundRecipient.objects.update(next_attempt=timezone.now() - timedelta(seconds=1))
    for message_id in due_message_ids():
        deliver_outbound(message_id)


# --- Opening -----------------------------------------------------------------------------------


def test_compose_opens_as_a_page_with_the_identity_and_signature(web, mailbox):
    WebmailSettings.objects.create(mailbox=mailbox, signature="Demo\nexample.test")
    cid = new(web)
    html = web.get(f"/compose/{cid}/").content.decode()
    assert 'id="compose-form"' in html and 'class="app compose-page"' in html
    assert '<option value="demo@example.test" selected>' in html
    assert "-- \nDemo\nexample.test" in html


def test_compose_opens_as_a_pane_for_htmx_and_pushes_its_url(web):
    response = web.post("/compose/", {"to": "bob@example.test"}, **HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="reader" class="pane reader compose-pane')
    assert 'value="bob@example.test"' in html
    assert re.fullmatch(r"/compose/\d+/", response["HX-Push-Url"])


def test_another_users_composition_is_not_found(web, client_for, make_mailbox):
    cid = new(web)
    intruder = client_for(make_mailbox("eve@example.test"))
    assert intruder.get(f"/compose/{cid}/").status_code == 404
    assert intruder.post(f"/compose/{cid}/autosave/", fields(body="x")).status_code == 404
    assert send(intruder, cid, to="eve@example.test", subject="x").status_code == 404


# --- Sending -------------------------------------------------------------------------------


def test_a_new_message_is_queued_held_for_undo_with_a_copy_in_sent_that_parses_back_exactly(
    web, mailbox, bob
):
    cid = new(web)
    response = send(web, cid, to="Bob Ünïcode <bob@example.test>, carol@remote.test",
                    cc="Dave <dave@remote.test>", bcc="secret@remote.test",
                    subject="Grüße — 你好 🚀", body="Line one ✓\r\nLine two\r\n")
    assert response.status_code == 200, response.content[:800]
    html = response.content.decode()
    assert 'id="undo-send"' in html and "Message sent." in html
    entry = OutboundMessage.objects.get()
    assert entry.hold_until > timezone.now()
    assert entry.mailbox == mailbox and entry.mail_from == "demo@example.test"
    assert sorted(r.address for r in entry.recipients.all()) == [
        "bob@example.test", "carol@remote.test", "dave@remote.test", "secret@remote.test"]
    # What leaves has no Bcc; what is kept in Sent does.
    out = email.message_from_bytes(load_blob(entry.blob_id), policy=policy.default)
    assert out["Bcc"] is None
    assert str(out["Subject"]) == "Grüße — 你好 🚀"
    assert [(a.display_name, a.addr_spec) for a in out["To"].addresses] == [
        ("Bob Ünïcode", "bob@example.test"), ("", "carol@remote.test")]
    assert out.get_content().replace("\r\n", "\n") == "Line one ✓\nLine two\n"
    assert out.get_content_type() == "text/plain"
    [sent] = folder_messages(mailbox, "sent")
    copy = parsed(sent)
    assert copy["Bcc"].addresses[0].addr_spec == "secret@remote.test"
    assert copy["Message-ID"] == out["Message-ID"] == entry.message_id
    assert sent.seen
    assert Composition.objects.get(pk=cid).state == ComposeState.SENDING
    # Held: bob has nothing yet, and the worker leaves it alone until the hold ends.
    assert folder_messages(bob, "inbox") == []
    assert due_message_ids() == []


def test_after_the_undo_window_local_recipients_get_it_through_the_queue_as_delivered(
    web, mailbox, bob
):
    cid = new(web)
    send(web, cid, to="bob@example.test", subject="Hello Bob", body="Hi\n")
    release_and_deliver()
    [received] = folder_messages(bob, "inbox")
    assert received.subject == "Hello Bob"
    recipient = OutboundRecipient.objects.get()
    assert recipient.state == "delivered" and recipient.last_host == "local"
    [sent] = folder_messages(mailbox, "sent")
    html = web.get(f"/m/{sent.pk}/").content.decode()
    assert 'class="recipient state-delivered"' in html
    assert "this server&#x27;s mailbox" in html or "this server's mailbox" in html
    sent_list = web.get(f"/f/{sent.folder_id}/").content.decode()
    assert 'delivery-badge state-delivered' in sent_list


def test_a_plain_form_post_sends_and_redirects_without_javascript(web, mailbox):
    cid = new(web)
    response = send(web, cid, htmx=False, to="carol@remote.test", subject="Plain", body="x")
    assert response.status_code == 302
    assert OutboundMessage.objects.count() == 1


def test_bad_addresses_are_form_errors_and_keep_everything_typed(web):
    cid = new(web)
    response = send(web, cid, to="bob@example.test, not an address", subject="Keep me",
                    body="My long text")
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="error-to"' in html and 'aria-invalid="true"' in html
    assert "My long text" in html and 'value="Keep me"' in html
    assert OutboundMessage.objects.count() == 0
    composition = Composition.objects.get(pk=cid)
    assert composition.body == "My long text" and composition.state == ComposeState.EDITING


def test_no_recipient_is_an_error(web):
    cid = new(web)
    response = send(web, cid, subject="To nobody", body="x")
    assert response.status_code == 400
    assert b"add at least one recipient" in response.content
    assert OutboundMessage.objects.count() == 0


def test_an_unknown_local_recipient_is_refused_before_anything_is_queued(web, mailbox):
    cid = new(web)
    response = send(web, cid, to="nobody@example.test", subject="x", body="x")
    assert response.status_code == 400
    assert b"no such address here" in response.content
    assert OutboundMessage.objects.count() == 0 and folder_messages(mailbox, "sent") == []


def test_sending_as_an_address_that_is_not_the_users_is_refused(web, mailbox, make_mailbox):
    make_mailbox("boss@example.test")
    cid = new(web)
    response = send(web, cid, from_addr="boss@example.test", to="carol@remote.test",
                    subject="x", body="x")
    assert response.status_code == 400
    assert OutboundMessage.objects.count() == 0


@pytest.mark.parametrize("field,value", [
    ("subject", "Hello\r\nBcc: victim@remote.test"),
    ("subject", "Hello\nX-Injected: yes"),
    ("to", "carol@remote.test\r\nBcc: victim@remote.test"),
    ("cc", "carol@remote.test\nBcc: victim@remote.test"),
    ("bcc", "a@remote.test\r\n\r\nbody injection"),
])
def test_line_breaks_in_any_header_field_are_refused_and_nothing_is_queued(
    web, mailbox, field, value
):
    cid = new(web)
    data = {"to": "carol@remote.test", "subject": "ok", "body": "x", field: value}
    response = send(web, cid, **data)
    assert response.status_code == 400
    assert b"line breaks are not allowed" in response.content or b"could not read" in \
        response.content
    assert OutboundMessage.objects.count() == 0 and folder_messages(mailbox, "sent") == []


def test_autosaving_a_field_with_a_line_break_never_injects_a_header_into_the_draft(
    web, mailbox
):
    cid = new(web)
    web.post(f"/compose/{cid}/autosave/", fields(
        to="carol@remote.test", subject="Hi\r\nBcc: victim@remote.test", body="x"))
    [draft] = folder_messages(mailbox, "drafts")
    msg = parsed(draft)
    assert msg["Bcc"] is None and msg["X-Injected"] is None
    assert str(msg["Subject"]) == "Hi Bcc: victim@remote.test"


def test_attachment_reminder_asks_before_sending_then_send_anyway_sends(web):
    cid = new(web)
    response = send(web, cid, to="carol@remote.test", subject="Report",
                    body="Please find the report attached.\n\n> quoted attachment talk\n")
    assert response.status_code == 400
    assert b"nothing is attached" in response.content
    assert OutboundMessage.objects.count() == 0
    response = send(web, cid, to="carol@remote.test", subject="Report",
                    body="Please find the report attached.", no_attachment_ok="1")
    assert response.status_code == 200
    assert OutboundMessage.objects.count() == 1


def test_quoted_text_alone_mentioning_an_attachment_does_not_trigger_the_reminder(web):
    cid = new(web)
    response = send(web, cid, to="carol@remote.test", subject="Re: x",
                    body="Thanks!\n\nOn Mon, Ann wrote:\n> see the attached file\n")
    assert response.status_code == 200


# --- Attachments -------------------------------------------------------------------------------


def test_attachments_upload_show_and_are_removed_and_go_out_as_rfc2231_multipart(
    web, mailbox, settings
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    cid = new(web)
    data = bytes(range(256)) * 40
    response = web.post(f"/compose/{cid}/attach/", {"files": [
        SimpleUploadedFile("résumé 2026.pdf", data, "application/pdf"),
        SimpleUploadedFile("notes.txt", b"plain notes\n", "text/plain"),
    ]}, **HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "résumé 2026.pdf" in html and "notes.txt" in html
    composition = Composition.objects.get(pk=cid)
    notes = composition.uploads.get(filename="notes.txt")
    response = web.post(f"/compose/{cid}/attach/{notes.pk}/remove/", **HX)
    assert "notes.txt" not in response.content.decode()
    send(web, cid, to="carol@remote.test", subject="CV", body="My CV is attached.")
    out = email.message_from_bytes(load_blob(OutboundMessage.objects.get().blob_id),
                                   policy=policy.default)
    assert out.get_content_type() == "multipart/mixed"
    [part] = list(out.iter_attachments())
    assert part.get_filename() == "résumé 2026.pdf" and part.get_content() == data
    assert b"filename*=utf-8''r%C3%A9sum%C3%A9" in load_blob(OutboundMessage.objects.get().blob_id)


def test_an_attachment_over_the_size_limit_is_refused_with_the_limit_shown(web, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.CORREIO_MAX_MESSAGE_SIZE = 200 * 1024
    cid = new(web)
    response = web.post(f"/compose/{cid}/attach/", {
        "files": [SimpleUploadedFile("big.bin", b"x" * 150 * 1024, "application/octet-stream")]
    }, **HX)
    assert response.status_code == 413
    assert b"too large" in response.content
    assert Composition.objects.get(pk=cid).uploads.count() == 0


# --- Reply, reply-all, forward ---------------------------------------------------------------


@pytest.fixture
def original(deliver, mailbox):
    return deliver(raw=make_message(
        subject="Re: AW: Plans", sender="Ann <ann@remote.test>",
        to="demo@example.test, Zed <zed@remote.test>",
        extra_headers={"Cc": "Demo Again <DEMO@example.test>, cat@remote.test"},
        message_id="<orig-1@remote.test>", references="<root@remote.test>",
        body="Shall we meet?\n> earlier\n",
        attachments=[("plan.txt", b"the plan\n", "text/plain")],
    ), to="demo@example.test")


def test_reply_quotes_threads_and_sets_answered_on_the_original(web, mailbox, original):
    response = web.post(f"/m/{original.pk}/reply/", **HX)
    html = response.content.decode()
    assert 'value="Re: Plans"' in html
    assert 'value="Ann &lt;ann@remote.test&gt;"' in html
    assert "&gt; Shall we meet?\n&gt;&gt; earlier" in html
    composition = Composition.objects.latest("pk")
    assert composition.cc == ""
    assert composition.in_reply_to == "<orig-1@remote.test>"
    assert composition.references == "<root@remote.test> <orig-1@remote.test>"
    send(web, composition.pk, to=composition.to, subject=composition.subject,
         body="Yes!\n" + composition.body)
    original.refresh_from_db()
    assert original.answered
    out = email.message_from_bytes(load_blob(OutboundMessage.objects.get().blob_id),
                                   policy=policy.default)
    assert out["In-Reply-To"] == "<orig-1@remote.test>"
    assert out["References"] == "<root@remote.test> <orig-1@remote.test>"
    [sent] = folder_messages(mailbox, "sent")
    assert sent.thread_id == original.thread_id


def test_reply_all_leaves_out_the_users_own_addresses(web, original):
    web.post(f"/m/{original.pk}/reply-all/", **HX)
    composition = Composition.objects.latest("pk")
    assert composition.to == "Ann <ann@remote.test>"
    assert composition.cc == "Zed <zed@remote.test>, cat@remote.test"
    assert "demo@" not in composition.cc.lower()


def test_forward_inline_carries_the_text_and_the_original_attachments(web, original):
    html = web.post(f"/m/{original.pk}/forward/", **HX).content.decode()
    assert 'value="Fwd: Plans"' in html
    assert "---------- Forwarded message ----------" in html
    assert "plan.txt" in html
    composition = Composition.objects.latest("pk")
    send(web, composition.pk, to="x@remote.test", subject=composition.subject,
         body=composition.body)
    out = email.message_from_bytes(load_blob(OutboundMessage.objects.get().blob_id),
                                   policy=policy.default)
    [part] = list(out.iter_attachments())
    assert part.get_filename() == "plan.txt" and part.get_content() == "the plan\n"


def test_forward_as_attachment_sends_the_original_as_message_rfc822(web, original):
    web.post(f"/m/{original.pk}/forward/", {"as": "attachment"}, **HX)
    composition = Composition.objects.latest("pk")
    send(web, composition.pk, to="x@remote.test", subject=composition.subject, body="FYI")
    out = email.message_from_bytes(load_blob(OutboundMessage.objects.get().blob_id),
                                   policy=policy.default)
    [part] = list(out.iter_attachments())
    assert part.get_content_type() == "message/rfc822"
    assert part.get_content()["Message-ID"] == "<orig-1@remote.test>"


def test_reply_to_another_users_message_is_not_found(web, client_for, make_mailbox, original):
    intruder = client_for(make_mailbox("eve@example.test"))
    for kind in ("reply", "reply-all", "forward"):
        assert intruder.post(f"/m/{original.pk}/{kind}/").status_code == 404


# --- Drafts ------------------------------------------------------------------------------------


def test_autosave_puts_one_draft_in_drafts_and_replaces_it_on_each_change(web, mailbox):
    cid = new(web)
    response = web.post(f"/compose/{cid}/autosave/", fields(to="carol@remote.test",
                                                             subject="Draft", body="one"))
    assert response.status_code == 200 and b"Draft saved" in response.content
    [first] = folder_messages(mailbox, "drafts")
    assert first.draft and first.seen
    unchanged = web.post(f"/compose/{cid}/autosave/", fields(to="carol@remote.test",
                                                              subject="Draft", body="one"))
    assert unchanged.status_code == 204
    web.post(f"/compose/{cid}/autosave/", fields(to="carol@remote.test", subject="Draft",
                                                  body="one two"))
    [second] = folder_messages(mailbox, "drafts")
    assert second.uid > first.uid
    assert parsed(second).get_content().strip() == "one two"


def test_a_draft_reopens_exactly_as_typed_and_is_removed_once_sent(web, mailbox):
    cid = new(web)
    typed = "Ann <ann@remote.test>, not-yet-finished"
    web.post(f"/compose/{cid}/autosave/", fields(to=typed, subject="Later", body="half"))
    [draft] = folder_messages(mailbox, "drafts")
    html = web.post(f"/m/{draft.pk}/edit/", **HX).content.decode()
    assert f'value="{typed}"'.replace("<", "&lt;").replace(">", "&gt;") in html
    assert f'data-composition="{cid}"' in html
    send(web, cid, to="ann@remote.test", subject="Later", body="whole")
    assert folder_messages(mailbox, "drafts") == []


def test_a_draft_saved_by_an_imap_client_opens_in_the_compose_form(web, mailbox):
    drafts = mailbox.folders.get(role="drafts")
    raw = make_message(subject="From Thunderbird", sender="demo@example.test",
                       to="Ann <ann@remote.test>", body="typed elsewhere\n",
                       attachments=[("a.txt", b"A\n", "text/plain")])
    draft = append_message(drafts, raw, flags=["\\Draft"])
    html = web.post(f"/m/{draft.pk}/edit/", **HX).content.decode()
    assert 'value="From Thunderbird"' in html and "typed elsewhere" in html
    assert "a.txt" in html
    composition = Composition.objects.latest("pk")
    send(web, composition.pk, to=composition.to, subject=composition.subject,
         body=composition.body)
    assert folder_messages(mailbox, "drafts") == []
    out = email.message_from_bytes(load_blob(OutboundMessage.objects.get().blob_id),
                                   policy=policy.default)
    assert [p.get_filename() for p in out.iter_attachments()] == ["a.txt"]


def test_only_messages_in_drafts_open_for_editing(web, deliver):
    message = deliver()
    assert web.post(f"/m/{message.pk}/edit/").status_code == 404


def test_discard_removes_the_draft_and_the_composition(web, mailbox):
    cid = new(web)
    web.post(f"/compose/{cid}/autosave/", fields(subject="Bin me", body="x"))
    response = web.post(f"/compose/{cid}/discard/", **HX)
    assert response.status_code == 200
    assert folder_messages(mailbox, "drafts") == []
    assert not Composition.objects.filter(pk=cid).exists()


# --- Undo send -------------------------------------------------------------------------------


def test_undo_within_the_window_leaves_nothing_in_the_queue_and_brings_the_form_back(
    web, mailbox, original
):
    web.post(f"/m/{original.pk}/reply/", **HX)
    composition = Composition.objects.latest("pk")
    send(web, composition.pk, to=composition.to, cc="zed@remote.test",
         subject=composition.subject, body="Undo me, please")
    original.refresh_from_db()
    assert original.answered and OutboundMessage.objects.count() == 1
    response = web.post(f"/compose/{composition.pk}/undo/", **HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="compose-form"' in html and "Undo me, please" in html
    assert 'value="zed@remote.test"' in html
    assert OutboundMessage.objects.count() == 0 and OutboundRecipient.objects.count() == 0
    assert folder_messages(mailbox, "sent") == []
    [draft] = folder_messages(mailbox, "drafts")
    assert parsed(draft).get_content().strip() == "Undo me, please"
    original.refresh_from_db()
    assert not original.answered
    assert Composition.objects.get(pk=composition.pk).state == ComposeState.EDITING


def test_undo_after_the_message_left_says_it_is_too_late(web, mailbox, bob):
    cid = new(web)
    send(web, cid, to="bob@example.test", subject="Gone", body="x")
    release_and_deliver()
    response = web.post(f"/compose/{cid}/undo/", **HX)
    assert b"Too late to undo" in response.content
    assert len(folder_messages(bob, "inbox")) == 1
    assert len(folder_messages(mailbox, "sent")) == 1


def test_the_undo_window_follows_the_users_setting(web, mailbox):
    WebmailSettings.objects.create(mailbox=mailbox, undo_seconds=30)
    cid = new(web)
    before = timezone.now()
    send(web, cid, to="carol@remote.test", subject="x", body="x")
    hold = OutboundMessage.objects.get().hold_until - before
    assert timedelta(seconds=29) < hold <= timedelta(seconds=31)


# --- Send later and the Outbox -------------------------------------------------------------


def schedule(web, cid, minutes=90, **kwargs):
    local = timezone.localtime() + timedelta(minutes=minutes)
    data = {"to": "carol@remote.test", "subject": "Scheduled", "body": "Later!",
            "action": "later", "send_at": local.strftime("%Y-%m-%dT%H:%M")}
    data.update(kwargs)
    return send(web, cid, **data)


def test_send_later_holds_the_message_until_its_time_in_the_browsers_time_zone(web, mailbox):
    cid = new(web)
    # The browser is at UTC-03:00 (getTimezoneOffset() = 180): 09:00 there is 12:00 UTC.
    when = (timezone.now() + timedelta(days=1)).replace(hour=9, minute=0, second=0,
                                                        microsecond=0)
    response = send(web, cid, to="carol@remote.test", subject="Morning", body="x",
                    action="later", send_at=when.strftime("%Y-%m-%dT%H:%M"), tz_offset="180")
    assert response.status_code == 200, response.content[:600]
    assert b"Scheduled for" in response.content
    entry = OutboundMessage.objects.get()
    assert entry.hold_until == when + timedelta(hours=3)
    assert Composition.objects.get(pk=cid).state == ComposeState.SCHEDULED
    assert due_message_ids() == []


def test_send_later_in_the_past_or_without_a_time_is_an_error(web):
    cid = new(web)
    assert schedule(web, cid, minutes=-5).status_code == 400
    response = schedule(web, cid, send_at="")
    assert response.status_code == 400 and b"choose when" in response.content
    assert OutboundMessage.objects.count() == 0


def test_the_outbox_lists_scheduled_mail_and_cancel_puts_it_back_in_drafts(web, mailbox):
    cid = new(web)
    schedule(web, cid)
    entry = OutboundMessage.objects.get()
    html = web.get("/outbox/", **HX).content.decode()
    assert "Scheduled" in html and "carol@remote.test" in html and f"outbox-{entry.pk}" in html
    response = web.post(f"/outbox/{entry.pk}/cancel/", **HX)
    assert b"Cancelled" in response.content
    assert OutboundMessage.objects.count() == 0
    assert folder_messages(mailbox, "sent") == []
    [draft] = folder_messages(mailbox, "drafts")
    assert parsed(draft).get_content().strip() == "Later!"
    assert "Nothing is waiting" in web.get("/outbox/").content.decode()


def test_editing_scheduled_mail_takes_it_out_of_the_queue_into_the_form(web, mailbox):
    cid = new(web)
    schedule(web, cid)
    entry = OutboundMessage.objects.get()
    html = web.post(f"/outbox/{entry.pk}/edit/", **HX).content.decode()
    assert 'id="compose-form"' in html and "Later!" in html
    assert OutboundMessage.objects.count() == 0
    # Rescheduled sooner, it goes at the new time.
    schedule(web, cid, minutes=30)
    assert OutboundMessage.objects.count() == 1


def test_scheduled_mail_goes_at_its_time_through_the_sweep_with_no_browser(
    web, mailbox, bob
):
    cid = new(web)
    schedule(web, cid, to="bob@example.test")
    assert due_message_ids() == []
    release_and_deliver()
    assert [m.subject for m in folder_messages(bob, "inbox")] == ["Scheduled"]


def test_another_users_outbox_entries_cannot_be_cancelled(web, client_for, make_mailbox):
    cid = new(web)
    schedule(web, cid)
    entry = OutboundMessage.objects.get()
    intruder = client_for(make_mailbox("eve@example.test"))
    intruder.post(f"/outbox/{entry.pk}/cancel/", **HX)
    assert OutboundMessage.objects.count() == 1
    assert "carol@remote.test" not in intruder.get("/outbox/").content.decode()


# --- Delivery status -------------------------------------------------------------------------


def test_delivery_status_shows_deferred_with_the_remote_reply_and_bounced_with_the_dsn(
    web, mailbox, remote_mx  # noqa: F811
):
    from tests.outbound.sink import Behaviour

    remote_mx("remote.test", behaviour=Behaviour(rcpt_replies={
        "slow@remote.test": ["451 4.7.1 greylisted, try later"],
        "gone@remote.test": ["550 5.1.1 no such user here"],
    }))
    cid = new(web)
    send(web, cid, to="ok@remote.test, slow@remote.test, gone@remote.test", subject="Status",
         body="x")
    [sent] = folder_messages(mailbox, "sent")
    html = web.get(f"/m/{sent.pk}/delivery/").content.decode()
    assert html.count("state-queued") + html.count("state-scheduled") == 3
    assert 'hx-trigger="every 3s"' in html  # refreshed while someone waits
    release_and_deliver()
    html = web.get(f"/m/{sent.pk}/delivery/").content.decode()
    assert re.search(r'state-delivered" data-address="ok@remote.test">.*?127\.0\.0\.1', html,
                     re.S)
    deferred = re.search(r'data-address="slow@remote.test">(.*?)</li>', html, re.S).group(1)
    assert "deferred" in deferred and "greylisted, try later" in deferred
    assert "next try at" in deferred
    bounced = re.search(r'data-address="gone@remote.test">(.*?)</li>', html, re.S).group(1)
    assert "bounced" in bounced and "no such user here" in bounced
    dsn = Message.objects.get(folder__mailbox=mailbox, folder__role="inbox",
                              subject="Undelivered Mail Returned to Sender")
    assert f'href="/m/{dsn.pk}/"' in bounced
    sent_list = web.get(f"/f/{sent.folder_id}/").content.decode()
    assert "delivery-badge state-bounced" in sent_list


def test_delivery_status_is_only_for_the_users_own_sent_messages(web, client_for, make_mailbox,
                                                                 deliver):
    received = deliver()
    assert web.get(f"/m/{received.pk}/delivery/").status_code == 204
    intruder = client_for(make_mailbox("eve@example.test"))
    assert intruder.get(f"/m/{received.pk}/delivery/").status_code == 404


# --- Autocomplete and settings ------------------------------------------------------------------


def test_autocomplete_offers_people_mailed_and_received_from_most_written_to_first(
    web, mailbox, deliver
):
    deliver(raw=make_message(sender="Ann Lee <ann@remote.test>"))
    deliver(raw=make_message(sender="Annabel <annabel@else.test>"))
    deliver(raw=make_message(sender="Mailer <MAILER-DAEMON@remote.test>"))
    cid = new(web)
    send(web, cid, to="Annabel <annabel@else.test>", subject="x", body="x")
    results = web.get("/contacts/", {"q": "ann"}).json()["results"]
    assert [r["address"] for r in results] == ["annabel@else.test", "ann@remote.test"]
    assert results[1]["text"] == "Ann Lee <ann@remote.test>"
    assert [r["address"] for r in web.get("/contacts/", {"q": "lee"}).json()["results"]] == [
        "ann@remote.test"]
    assert web.get("/contacts/", {"q": "mailer"}).json()["results"] == []
    assert Correspondent.objects.filter(mailbox=mailbox).count() == 2


def test_settings_save_signature_default_identity_and_undo_window(web, mailbox):
    response = web.post("/settings/", {"form": "compose", "signature": "— Demo",
                                       "default_identity": "demo@example.test",
                                       "undo_seconds": "20"})
    assert response.status_code == 302
    prefs = WebmailSettings.objects.get(mailbox=mailbox)
    assert prefs.signature == "— Demo" and prefs.undo_seconds == 20
    cid = new(web)
    assert Composition.objects.get(pk=cid).body == "\n\n-- \n— Demo\n"

