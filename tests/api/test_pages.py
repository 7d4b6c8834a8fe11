"""The server-rendered pages: a job's live progress page and the organization dashboard (the view action,
tenant-scoped)."""

from __future__ import annotations

import pytest
from django.test import Client

from qbo_sync.models import SyncJob
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_progress_page_renders_and_points_at_the_api(user_a, org_a, make_push_job):
    job = make_push_job(org_a, 2)
    response = browser(user_a).get(f"/qbo/jobs/{job.pk}/progress/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f"/api/qbo/jobs/{job.pk}/" in html and f"/api/qbo/jobs/{job.pk}/cancel/" in html
    assert 'id="bar"' in html and 'id="eta"' in html and "/qbo/dashboard/?org=org-a" in html


def test_progress_page_of_another_organization_is_404(user_a, org_b, make_push_job):
    theirs = make_push_job(org_b, 1)
    assert browser(user_a).get(f"/qbo/jobs/{theirs.pk}/progress/").status_code == 404
    assert browser(user_a).get("/qbo/jobs/999999/progress/").status_code == 404


def test_pages_need_login_and_the_view_action(org_a, make_push_job, settings):
    """The pages follow the API's rule (qbo_sync.permissions), not staff status: a member who may view sees them;
    anonymous visitors are sent to log in; without the view action (default rule, no Django permission) 404."""
    job = make_push_job(org_a, 1)
    clerk = MembershipFactory(organization=org_a, user=UserFactory(username="clerk", is_staff=False)).user
    for url in (f"/qbo/jobs/{job.pk}/progress/", "/qbo/dashboard/?org=org-a"):
        assert browser(clerk).get(url).status_code == 200
        assert Client().get(url).status_code == 302
    settings.QBO_SYNC = {**settings.QBO_SYNC, "PERMISSION_CHECKER": None}
    for url in (f"/qbo/jobs/{job.pk}/progress/", "/qbo/dashboard/?org=org-a"):
        assert browser(clerk).get(url).status_code == 404


def test_dashboard(user_a, org_a, make_push_job, make_conflict):
    job = make_push_job(org_a, 3)
    conflict = make_conflict(org_a)
    response = browser(user_a).get("/qbo/dashboard/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Org A" in html and "Org A Books" in html and 'id="connection-status"' in html
    assert f"/qbo/jobs/{job.pk}/progress/" in html
    assert 'id="queue-pending">3<' in html
    assert "qbo@example.com" in html and f"<td>{conflict.pk}</td>" in html
    assert "/api/qbo/progress/" in html


def test_dashboard_scoping(user_a, org_a, org_b):
    assert browser(user_a).get("/qbo/dashboard/?org=org-b").status_code == 404
    carol = UserFactory(username="carol")
    MembershipFactory(user=carol, organization=org_a)
    MembershipFactory(user=carol, organization=org_b)
    chooser = browser(carol).get("/qbo/dashboard/").content.decode()
    assert "?org=org-a" in chooser and "?org=org-b" in chooser
    assert "Org B Books" in browser(carol).get("/qbo/dashboard/?org=org-b").content.decode()


def test_the_progress_page_and_the_admin_name_a_job_state_alike(user_a, org_a, make_push_job):
    """One word set: the API's ``failed`` is shown as the admin's label, "Failed" (was "Completed with failures")."""
    job = make_push_job(org_a, 1)
    SyncJob.objects.filter(pk=job.pk).update(state=SyncJob.State.FAILED)
    html = browser(user_a).get(f"/qbo/jobs/{job.pk}/progress/").content.decode()
    assert '<span id="state" class="state failed">Failed</span>' in html
    assert '"failed": "Failed"' in html and "Completed with failures" not in html
