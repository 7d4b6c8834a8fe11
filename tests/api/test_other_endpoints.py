"""progress/, conflicts/ (list, detail, resolve), connection/, entities/{type}/{id}/status/."""

from __future__ import annotations

import pytest

from batchly.models import Customer
from qbo_sync.models import Conflict, QboConnection, QueueItem
from qbo_sync.services import jobs
from tests.factories import CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db


# --- progress ------------------------------------------------------------------------------------------------------

def test_queue_progress_counts(api, org_a, org_b, make_push_job):
    make_push_job(org_a, 3)
    make_push_job(org_b, 5)
    body = api.get("/api/qbo/progress/").json()
    assert body["organization"] == "org-a" and body["entity"] is None
    assert (body["pending"], body["due"], body["completed"]) == (3, 3, 0)
    assert body["oldest_due_seconds"] is not None
    assert api.get("/api/qbo/progress/?entity=invoice").json()["pending"] == 0
    assert api.get("/api/qbo/progress/?entity=customers").json() | {"oldest_due_seconds": 0} == {
        "organization": "org-a", "entity": "Customer", "pending": 3, "processing": 0, "completed": 0, "failed": 0,
        "dead": 0, "cancelled": 0, "due": 3, "oldest_due_seconds": 0}


def test_queue_progress_bad_entity(api, org_a):
    response = api.get("/api/qbo/progress/?entity=widget")
    assert response.status_code == 400 and "entity" in response.json()


# --- conflicts -----------------------------------------------------------------------------------------------------

def test_conflict_list_is_scoped_and_filtered(api, org_a, org_b, make_conflict):
    mine = make_conflict(org_a)
    make_conflict(org_b)
    auto = make_conflict(org_a, field="phone")
    Conflict.objects.filter(pk=auto.pk).update(state=Conflict.State.AUTO_RESOLVED)
    body = api.get("/api/qbo/conflicts/").json()
    assert body["count"] == 2
    assert [r["id"] for r in api.get("/api/qbo/conflicts/?state=open").json()["results"]] == [mine.pk]
    assert api.get("/api/qbo/conflicts/?entity=item").json()["count"] == 0
    row = api.get(f"/api/qbo/conflicts/{mine.pk}/").json()
    assert row["organization"] == "org-a" and row["field"] == "email" and row["state"] == "open"
    assert (row["host_value"], row["qbo_value"], row["base_value"]) == ("host@example.com", "qbo@example.com",
                                                                       "base@example.com")
    assert api.get("/api/qbo/conflicts/?state=closed").status_code == 400


@pytest.mark.parametrize("keep, value, expected", [("host", None, "host@example.com"),
                                                    ("qbo", None, "qbo@example.com"),
                                                    ("value", "edited@example.com", "edited@example.com")])
def test_resolve(api, user_a, org_a, make_conflict, keep, value, expected):
    conflict = make_conflict(org_a)
    payload = {"keep": keep} | ({"value": value} if value is not None else {})
    response = api.post(f"/api/qbo/conflicts/{conflict.pk}/resolve/", payload, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"] == "resolved" and body["resolved_value"] == expected and body["resolved_by"] == "alice"
    assert Customer.objects.get(pk=conflict.mapping.object_id).email == expected
    # A value QuickBooks does not hold yet is pushed.
    pushed = QueueItem.objects.filter(entity_type="Customer", object_id=conflict.mapping.object_id).exists()
    assert pushed == (expected != "qbo@example.com")
    again = api.post(f"/api/qbo/conflicts/{conflict.pk}/resolve/", {"keep": "qbo"}, format="json")
    assert again.status_code == 409


@pytest.mark.parametrize("payload, field", [
    ({}, "keep"),
    ({"keep": "mine"}, "keep"),
    ({"keep": ["qbo"]}, "keep"),
    ({"keep": "value"}, "value"),
    ({"keep": "value", "value": None}, "value"),
    ({"keep": "value", "value": {"a": 1}}, "value"),
    ({"keep": "qbo", "value": "x"}, "value"),
    ({"keep": "qbo", "why": "because"}, "why"),
])
def test_resolve_bad_input(api, org_a, make_conflict, payload, field):
    conflict = make_conflict(org_a)
    response = api.post(f"/api/qbo/conflicts/{conflict.pk}/resolve/", payload, format="json")
    assert response.status_code == 400 and field in response.json(), response.content
    conflict.refresh_from_db()
    assert conflict.state == "open" and Customer.objects.get(pk=conflict.mapping.object_id).email == "host@example.com"


def test_resolve_malformed_json(api, org_a, make_conflict):
    conflict = make_conflict(org_a)
    response = api.post(f"/api/qbo/conflicts/{conflict.pk}/resolve/", data="{keep: qbo}",
                        content_type="application/json")
    assert response.status_code == 400
    assert Conflict.objects.get(pk=conflict.pk).state == "open"


def test_cannot_see_or_resolve_another_organizations_conflict(api, org_b, make_conflict):
    theirs = make_conflict(org_b)
    assert api.get(f"/api/qbo/conflicts/{theirs.pk}/").status_code == 404
    assert api.post(f"/api/qbo/conflicts/{theirs.pk}/resolve/", {"keep": "host"}, format="json").status_code == 404
    assert api.get("/api/qbo/conflicts/").json()["count"] == 0
    theirs.refresh_from_db()
    assert theirs.state == "open"


# --- connection ----------------------------------------------------------------------------------------------------

def test_connection_status_never_shows_tokens(api, org_a):
    conn = QboConnection.objects.get(organization=org_a)
    conn.access_token, conn.refresh_token = "secret-access-token", "secret-refresh-token"
    conn.save()
    response = api.get("/api/qbo/connection/")
    body = response.json()
    assert body["status"] == "connected" and body["connected"] is True and body["realm_id"] == "9001"
    assert body["organization"] == "org-a" and body["company_name"] == "Org A Books"
    text = response.content.decode()
    assert "secret" not in text and "token_encrypted" not in text and "access_token\"" not in text
    assert not any(name.endswith("_token") or "encrypted" in name for name in body)


def test_connection_when_never_connected(api, org_a):
    QboConnection.objects.filter(organization=org_a).delete()
    body = api.get("/api/qbo/connection/").json()
    assert body["status"] == "disconnected" and body["connected"] is False and body["realm_id"] == ""


# --- record status -------------------------------------------------------------------------------------------------

def test_record_status(api, org_a, make_conflict):
    customer = CustomerFactory(organization=org_a)
    assert api.get(f"/api/qbo/entities/customer/{customer.pk}/status/").json()["state"] == "not_synced"
    jobs.start_push(org_a.pk, "Customer", [customer.pk])
    body = api.get(f"/api/qbo/entities/Customers/{customer.pk}/status/").json()
    assert body == body | {"entity": "Customer", "id": str(customer.pk), "state": "pending", "qbo_id": None}
    conflicted = make_conflict(org_a)
    body = api.get(f"/api/qbo/entities/customer/{conflicted.mapping.object_id}/status/").json()
    assert body["state"] == "conflict" and body["open_conflicts"] == 1 and body["qbo_id"].startswith("Q")
    invoice = InvoiceFactory(organization=org_a, customer=CustomerFactory(organization=org_a))
    assert api.get(f"/api/qbo/entities/invoice/{invoice.pk}/status/").json()["state"] == "not_synced"


@pytest.mark.parametrize("path", ["widget/1", "payment/1", "customer/999999", "customer/abc",
                                  f"customer/{10**30}"])
def test_record_status_unknown_is_404(api, org_a, path):
    assert api.get(f"/api/qbo/entities/{path}/status/").status_code == 404


def test_record_status_of_another_organizations_row_is_404(api, org_b):
    theirs = CustomerFactory(organization=org_b)
    assert api.get(f"/api/qbo/entities/customer/{theirs.pk}/status/").status_code == 404


# --- pause / resume ------------------------------------------------------------------------------------------------

def test_pause_and_resume_through_the_api(api, org_a, user_a):
    from batchly.models import Membership

    Membership.objects.filter(user=user_a).update(role=Membership.Role.VIEWER)
    refused = api.post("/api/qbo/connection/pause/", {"reason": "month-end close"}, format="json")
    assert refused.status_code == 403  # pausing is an operator's action (the one permission rule)
    Membership.objects.filter(user=user_a).update(role=Membership.Role.OPERATOR)
    assert api.post("/api/qbo/connection/pause/", {}, format="json").json() == {"reason": ["This field is required."]}
    bad = api.post("/api/qbo/connection/pause/", {"reason": "   "}, format="json")
    assert bad.status_code == 400 and list(bad.json()) == ["reason"]
    body = api.post("/api/qbo/connection/pause/", {"reason": "month-end close"}, format="json").json()
    assert body["paused"] is True and body["pause_reason"] == "month-end close" and body["paused_at"]
    assert api.get("/api/qbo/connection/").json()["paused"] is True
    body = api.post("/api/qbo/connection/resume/", format="json").json()
    assert body["paused"] is False and body["pause_reason"] == ""
    from qbo_sync.models import AuditEntry

    assert list(AuditEntry.objects.filter(organization=org_a).order_by("pk").values_list(
        "action", "surface", "user")) == [("pause", "api", user_a.pk), ("resume", "api", user_a.pk)]


def test_pause_of_another_organization_is_not_found(api, org_a, org_b, user_a):
    response = api.post(f"/api/qbo/connection/pause/?org={org_b.pk}", {"reason": "x"}, format="json")
    assert response.status_code in (403, 404)
    assert QboConnection.objects.get(organization=org_b).paused_at is None
