"""URL routes: the Django admin and the webmail."""

from django.contrib import admin
from django.http import HttpResponse
from django.urls import path


def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


admin.site.site_header = "Correio administration"
admin.site.site_title = "Correio admin"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
]
