"""URLs of a host that mounts the admin but not qbo_sync's pages (the job link falls back to the admin)."""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
