"""The sync's REST API. A host mounts it with ``path("api/qbo/", include("qbo_sync.api.urls"))``."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from qbo_sync.api import views

app_name = "qbo_sync_api"

router = SimpleRouter()
router.register("jobs", views.JobViewSet, basename="job")
router.register("conflicts", views.ConflictViewSet, basename="conflict")
router.register("audit", views.AuditViewSet, basename="audit")

urlpatterns = [
    *router.urls,
    path("progress/", views.QueueProgressView.as_view(), name="queue-progress"),
    path("sync/", views.SyncView.as_view(), name="sync"),
    path("connection/", views.ConnectionView.as_view(), name="connection"),
    path("connection/pause/", views.ConnectionPauseView.as_view(), name="connection-pause"),
    path("connection/resume/", views.ConnectionResumeView.as_view(), name="connection-resume"),
    path("entities/<str:entity>/<str:object_id>/status/", views.RecordStatusView.as_view(), name="entity-status"),
]
