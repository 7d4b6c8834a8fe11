from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("qbo/", include("qbo_sync.urls")),
    path("api/qbo/", include("qbo_sync.api.urls")),
]
