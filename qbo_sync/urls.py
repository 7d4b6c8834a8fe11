"""qbo_sync's URLs. A host adds ``path("qbo/", include("qbo_sync.urls"))``."""

from django.urls import path  # noqa: F401

app_name = "qbo_sync"

urlpatterns: list = []
