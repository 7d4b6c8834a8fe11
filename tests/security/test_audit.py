"""The audit log: every change records who, through which surface, from which address; the admin lists it with
filters, the API serves it read-only and tenant-scoped. Issue 12, Audit."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from qbo_sync.models import AuditEntry, QboConnection
from tests.factories import CustomerFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def api_as(user, address: str = "203.0.113.7") -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    client.force_login(user)
    return client


def test_who_overwrote_this_customers_email(org_a, make_conflict):
    conflict = make_conflict(org_a, host="right@example.com", qbo="qbo@example.com")
    customer_id = conflict.mapping.object_id
    mallory = MembershipFactory(organization=org_a, role="operator", user=UserFactory(username="mallory")).user
    client = api_as(mallory)
    response = client.post(f"/api/qbo/conflicts/{conflict.pk}/resolve/", {"keep": "value", "value": "x@evil.test"},
                           format="json", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert response.status_code == 200

    answer = api_as(UserFactory(is_superuser=True)).get(
        "/api/qbo/audit/", {"entity": "customer", "object_id": customer_id, "field": "email"}).json()

    assert answer["count"] == 1
    entry = answer["results"][0]
    assert entry["user"] == "mallory" and entry["actor"] == "mallory"
    assert entry["action"] == "resolve_conflict" and entry["surface"] == "api"
    assert entry["address"] == "203.0.113.7"  # REMOTE_ADDR; the X-Forwarded-For header is not trusted
    assert entry["old_value"] == "right@example.com" and entry["new_value"] == "x@evil.test"
    assert entry["organization"] == "org-a"


def test_jobs_started_and_cancelled_through_the_api_are_recorded(org_a):
    CustomerFactory(organization=org_a)
    user = MembershipFactory(organization=org_a, role="operator", user=UserFactory(username="olga")).user
    client = api_as(user, "192.0.2.10")
    job = client.post("/api/qbo/sync/", {"entity": "customer", "all": True}, format="json").json()["job"]
    assert client.post(f"/api/qbo/jobs/{job}/cancel/", {}, format="json").status_code == 200

    entries = list(AuditEntry.objects.order_by("pk").values_list("action", "surface", "actor", "address", "job_id"))
    assert entries == [("start_push", "api", "olga", "192.0.2.10", job), ("cancel_job", "api", "olga", "192.0.2.10",
                                                                            job)]


def test_a_refused_change_records_nothing(org_a, make_conflict):
    conflict = make_conflict(org_a)
    viewer = MembershipFactory(organization=org_a, role="viewer").user
    assert api_as(viewer).post(f"/api/qbo/conflicts/{conflict.pk}/resolve/", {"keep": "qbo"},
                               format="json").status_code == 403
    assert not AuditEntry.objects.exists()


def test_the_api_shows_only_the_callers_organizations(org_a, org_b, make_conflict):
    for org in (org_a, org_b):
        conflict = make_conflict(org)
        owner = MembershipFactory(organization=org, role="owner").user
        assert api_as(owner).post(f"/api/qbo/conflicts/{conflict.pk}/resolve/", {"keep": "qbo"},
                                  format="json").status_code == 200
    member_of_b = MembershipFactory(organization=org_b, role="viewer").user
    client = api_as(member_of_b)
    body = client.get("/api/qbo/audit/").json()
    assert body["count"] == 1 and body["results"][0]["organization"] == "org-b"
    assert client.get("/api/qbo/audit/", {"org": "org-a"}).status_code == 404
    assert client.get("/api/qbo/audit/", {"action": "nope"}).status_code == 400
    assert client.post("/api/qbo/audit/", {}, format="json").status_code == 405


def test_the_page_disconnect_and_the_command_line_are_recorded(org_a, org_b, make_conflict):
    owner = MembershipFactory(organization=org_a, role="owner", user=UserFactory(username="owen")).user
    browser = Client(REMOTE_ADDR="192.0.2.44")
    browser.force_login(owner)
    assert browser.post("/qbo/disconnect/", {"org": "org-a"}).status_code == 200
    conflict = make_conflict(org_b)
    call_command("qbo_sync", "conflicts", "resolve", str(conflict.pk), "--keep", "qbo", stdout=io.StringIO())

    page = AuditEntry.objects.get(action="disconnect")
    assert (page.surface, page.actor, page.user, page.address, page.organization_id) == (
        "page", "owen", owner, "192.0.2.44", org_a.pk)
    cli = AuditEntry.objects.get(action="resolve_conflict")
    assert (cli.surface, cli.actor, cli.user, cli.address) == ("cli", "system (cli)", None, "")
    assert QboConnection.objects.get(organization=org_a).status == QboConnection.Status.DISCONNECTED


def test_schedules_record_the_jobs_they_start(org_a):
    from qbo_sync.tasks import nightly_pull

    nightly_pull("customers")
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.surface, entry.entity_type, entry.organization_id) == (
        "start_pull", "schedule", "Customer", org_a.pk)


def test_the_admin_lists_entries_with_filters_and_is_read_only(org_a, make_conflict):
    conflict = make_conflict(org_a)
    admin_user = UserFactory(is_superuser=True, is_staff=True, username="root")
    browser = Client(REMOTE_ADDR="192.0.2.99")
    browser.force_login(admin_user)
    response = browser.post(f"/admin/qbo_sync/conflict/{conflict.pk}/resolve/", {"keep": "qbo"})
    assert response.status_code == 302
    entry = AuditEntry.objects.get()
    assert (entry.surface, entry.actor, entry.address) == ("admin", "root", "192.0.2.99")

    page = browser.get("/admin/qbo_sync/auditentry/", {"surface__exact": "admin", "action__exact": "resolve_conflict"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "root" in html and "192.0.2.99" in html
    for label in ("By action", "By surface", "By organization", "By user"):
        assert label in html
    assert browser.get("/admin/qbo_sync/auditentry/add/").status_code == 403
    assert browser.post(f"/admin/qbo_sync/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    with pytest.raises(ValueError, match="append-only"):
        entry.save()


def test_pause_and_resume_follow_the_rule_and_are_recorded(org_a):
    viewer = MembershipFactory(organization=org_a, role="viewer").user
    operator = MembershipFactory(organization=org_a, role="operator", user=UserFactory(username="opal")).user
    from qbo_sync.permissions import Actor, QboPermissionDenied
    from qbo_sync.services import operations

    with pytest.raises(QboPermissionDenied):
        operations.pause(Actor(viewer, "api"), org_a, "month-end close")
    operations.pause(Actor(operator, "admin", "192.0.2.5"), org_a, "month-end close")
    operations.resume(Actor(operator, "admin", "192.0.2.5"), org_a)
    operations.resume(Actor(operator, "admin", "192.0.2.5"), org_a)  # not paused: nothing changed, nothing recorded
    call_command("qbo_sync", "pause", "--org", "org-a", "--reason", "audit", stdout=io.StringIO())
    assert list(AuditEntry.objects.order_by("pk").values_list("action", "surface", "actor")) == [
        ("pause", "admin", "opal"), ("resume", "admin", "opal"), ("pause", "cli", "system (cli)")]


def test_a_resolve_records_the_value_it_overwrote_even_when_the_row_changed_since(org_a, make_conflict):
    conflict = make_conflict(org_a, host="then@example.com", qbo="qbo@example.com")
    customer = conflict.mapping.content_type.get_object_for_this_type(pk=conflict.mapping.object_id)
    customer.email = "now@example.com"
    customer.save()
    owner = MembershipFactory(organization=org_a, role="owner").user
    assert api_as(owner).post(f"/api/qbo/conflicts/{conflict.pk}/resolve/", {"keep": "qbo"},
                              format="json").status_code == 200
    entry = AuditEntry.objects.get(action="resolve_conflict")
    assert (entry.field, entry.old_value, entry.new_value) == ("email", "now@example.com", "qbo@example.com")
