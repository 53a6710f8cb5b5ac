"""URL routes: the Django admin and the webmail."""

from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path

from webmail.views import actions, auth, folder, folders, live, message, search, settings


def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


admin.site.site_header = "Correio administration"
admin.site.site_title = "Correio admin"

webmail_patterns = [
    path("", folder.index, name="index"),
    path("login/", auth.login_view, name="login"),
    path("logout/", auth.logout_view, name="logout"),
    path("f/<int:folder_id>/", folder.folder_view, name="folder"),
    path("m/<int:message_id>/", message.message_view, name="message"),
    path("m/<int:message_id>/body/", message.body_view, name="body"),
    path("m/<int:message_id>/part/<str:section>/", message.part_view, name="part"),
    path("m/<int:message_id>/raw/", message.raw_view, name="raw"),
    path("m/<int:message_id>/trust/", message.trust_sender, name="trust"),
    path("actions/", actions.action_view, name="action"),
    path("actions/undo/", actions.undo_view, name="undo"),
    path("folders/new/", folders.create_view, name="folder-create"),
    path("folders/<int:folder_id>/rename/", folders.rename_view, name="folder-rename"),
    path("folders/<int:folder_id>/delete/", folders.delete_view, name="folder-delete"),
    path("search/", search.search_view, name="search"),
    path("live/", live.poll_view, name="live"),
    path("settings/", settings.settings_view, name="settings"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("", include((webmail_patterns, "webmail"))),
]
