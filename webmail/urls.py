"""URL routes: the Django admin and the webmail."""

from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path, re_path

from webmail.admin_login import TwoFactorAdminAuthenticationForm
from webmail.metrics import metrics_view
from webmail.views import (
    actions,
    addressbook,
    admin_security,
    auth,
    compose,
    conversation,
    folder_admin,
    live,
    message,
    message_list,
    preferences,
    print_preview,
    rules,
    search,
    security,
    sending,
    settings,
)


def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


admin.site.site_header = "Correio administration"
admin.site.login_form = TwoFactorAdminAuthenticationForm
admin.site.site_title = "Correio admin"

webmail_patterns = [
    path("", message_list.index, name="index"),
    path("login/", auth.login_view, name="login"),
    path("login/code/", auth.code_view, name="login-code"),
    path("logout/", auth.logout_view, name="logout"),
    path("f/<int:folder_id>/", message_list.folder_view, name="folder"),
    path("m/<int:message_id>/", message.message_view, name="message"),
    path("m/<int:message_id>/seen/", message.seen_view, name="seen"),
    path("m/<int:message_id>/body/", message.body_view, name="body"),
    path("m/<int:message_id>/part/<str:section>/", message.part_view, name="part"),
    path("m/<int:message_id>/conversation/", conversation.conversation_view,
         name="conversation"),
    path("m/<int:message_id>/print/", print_preview.print_view, name="print"),
    path("preview/<int:message_id>/<str:section>/", print_preview.preview_view, name="preview"),
    path("m/<int:message_id>/raw/", message.raw_view, name="raw"),
    path("m/<int:message_id>/trust/", message.trust_sender, name="trust"),
    path("actions/", actions.action_view, name="action"),
    path("actions/undo/", actions.undo_view, name="undo"),
    path("folders/new/", folder_admin.create_view, name="folder-create"),
    path("folders/<int:folder_id>/rename/", folder_admin.rename_view, name="folder-rename"),
    path("folders/<int:folder_id>/delete/", folder_admin.delete_view, name="folder-delete"),
    path("folders/<int:folder_id>/empty/", folder_admin.empty_view, name="folder-empty"),
    path("search/", search.search_view, name="search"),
    path("live/", live.poll_view, name="live"),
    path("settings/", settings.settings_view, name="settings"),
    path("settings/notifications/", preferences.notifications_view,
         name="settings-notifications"),
    path("settings/rich-text/", preferences.rich_text_view, name="settings-rich-text"),
    path("settings/conversations/", preferences.conversations_view,
         name="settings-conversations"),
    path("settings/identity/", preferences.identity_view, name="settings-identity"),
    path("rules/", rules.rules_view, name="rules"),
    path("settings/security/", security.security_view, name="security"),
    path("compose/", compose.new_view, name="compose-new"),
    path("compose/<int:composition_id>/", compose.compose_view, name="compose"),
    path("compose/<int:composition_id>/autosave/", compose.autosave_view,
         name="compose-autosave"),
    path("compose/<int:composition_id>/attach/", compose.attach_view, name="compose-attach"),
    path("compose/<int:composition_id>/attach/<int:upload_id>/remove/", compose.detach_view,
         name="compose-detach"),
    path("compose/<int:composition_id>/discard/", compose.discard_view, name="compose-discard"),
    path("compose/<int:composition_id>/undo/", sending.undo_view, name="compose-undo"),
    path("m/<int:message_id>/edit/", compose.edit_draft_view, name="edit-draft"),
    path("m/<int:message_id>/delivery/", sending.status_view, name="delivery-status"),
    re_path(r"^m/(?P<message_id>[0-9]+)/(?P<kind>reply|reply-all|forward)/$", compose.reply_view,
            name="reply"),
    path("contacts/", compose.contacts_view, name="contacts"),
    path("addressbook/", addressbook.book_view, name="addressbook"),
    path("addressbook/<int:contact_id>/", addressbook.contact_view, name="contact"),
    path("addressbook/<int:contact_id>/delete/", addressbook.delete_view, name="contact-delete"),
    path("addressbook/from-correspondents/", addressbook.from_correspondents_view,
         name="contacts-from-correspondents"),
    path("addressbook/import/", addressbook.import_view, name="contacts-import"),
    path("addressbook/export.vcf", addressbook.export_view, name="contacts-export"),
    path("outbox/", sending.outbox_view, name="outbox"),
    path("outbox/<int:outbound_id>/edit/", sending.outbox_edit_view, name="outbox-edit"),
    path("outbox/<int:outbound_id>/cancel/", sending.outbox_cancel_view, name="outbox-cancel"),
]

urlpatterns = [
    # Before the admin's own routes, which would answer 404 for it.
    path("admin/two-factor/", admin_security.admin_two_factor_view, name="admin-two-factor"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("", include((webmail_patterns, "webmail"))),
]

# A compose form too large to read gets its own message (webmail/views/errors.py).
handler400 = "webmail.views.errors.bad_request"
