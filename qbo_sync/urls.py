"""qbo_sync's URLs. A host adds ``path("qbo/", include("qbo_sync.urls"))``.

The callback's full URL is what ``QBO_SYNC["REDIRECT_URI"]`` must say (and what the Intuit app must list).
"""

from django.urls import path

from qbo_sync import views
from qbo_sync.views_progress import dashboard, job_progress
from qbo_sync.webhooks.views import webhook

app_name = "qbo_sync"

urlpatterns: list = [
    path("connect/<str:org>/", views.connect, name="connect"),
    path("oauth/callback/", views.oauth_callback, name="oauth-callback"),
    path("disconnect/", views.disconnect, name="disconnect"),
    path("webhooks/", webhook, name="webhooks"),
    path("jobs/<int:pk>/progress/", job_progress, name="job-progress"),
    path("dashboard/", dashboard, name="dashboard"),
]
