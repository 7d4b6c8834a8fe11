"""Tenancy, end to end: a member of organization A walks every surface (API, admin, pages, connect/disconnect) with
the ids of organization B's rows and reaches none of them; webhook events for a realm only touch its organization.

tests/api and tests/admin check each endpoint one at a time; this builds both organizations with real jobs, queue
items, conflicts, log rows and cursors, and tries everything with B's ids in one pass, then checks B is untouched.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from rest_framework.test import APIClient

from batchly.models import Customer
from qbo_sync.models import (
    Conflict,
    EntityMapping,
    PullCursor,
    QboConnection,
    QueueItem,
    SyncJob,
    SyncLog,
    WebhookEvent,
)
from qbo_sync.services import jobs
from qbo_sync.webhooks.verify import signature
from tests.admin.conftest import OPERATOR_PERMS, grant
from tests.factories import CustomerFactory, MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

API = "/api/qbo/"
VERIFIER = "isolation-verifier-token"


def connect(org, realm_id: str) -> QboConnection:
    return QboConnection.objects.create(organization=org, realm_id=realm_id, environment="local",
                                        status=QboConnection.Status.CONNECTED, company_name=f"{org.name} Books",
                                        connected_at=timezone.now())


def tenant(slug: str, realm_id: str) -> dict:
    """An organization with a connection, a push job (3 queue items), a pull job, an open conflict, a mapping, a log
    row and a pull cursor."""
    org = OrganizationFactory(slug=slug, name=f"Tenant {slug.upper()}")
    connection = connect(org, realm_id)
    customers = CustomerFactory.create_batch(3, organization=org)
    push = jobs.start_push(org.pk, "Customer", [c.pk for c in customers])
    pull = jobs.start_pull(org.pk, "Item")
    mapping = EntityMapping.objects.create(
        organization=org, entity_type="Customer", content_type=ContentType.objects.get_for_model(Customer),
        object_id=str(customers[0].pk), realm_id=realm_id, qbo_id=f"Q{customers[0].pk}", sync_token="0",
        snapshot={"email": "base@example.com"}, state=EntityMapping.State.CONFLICT)
    conflict = Conflict.objects.create(organization=org, mapping=mapping, entity_type="Customer", field="email",
                                       base_value="base@example.com", host_value="host@example.com",
                                       qbo_value="qbo@example.com", rule="critical")
    log = SyncLog.objects.create(organization=org, event="push", entity_type="Customer",
                                 object_id=str(customers[0].pk), message=f"{slug} log row")
    cursor = PullCursor.objects.create(organization=org, entity_type="Item")
    return {"org": org, "connection": connection, "customers": customers, "push": push, "pull": pull,
            "items": list(QueueItem.objects.filter(organization=org)), "mapping": mapping, "conflict": conflict,
            "log": log, "cursor": cursor}


def admin_url(model: str, pk=None, view: str = "change") -> str:
    return f"/admin/{model}/" if pk is None else f"/admin/{model}/{pk}/{view}/"


def test_a_member_of_a_reaches_nothing_of_b_through_api_admin_or_pages(client) -> None:
    a, b = tenant("org-a", "9101"), tenant("org-b", "9102")
    alice = grant(MembershipFactory(organization=a["org"], user=UserFactory(username="alice")).user, OPERATOR_PERMS)
    api = APIClient()
    api.force_login(alice)
    client.force_login(alice)
    b_jobs = {b["push"].pk, b["pull"].pk}

    # --- API: lists show A only; B's ids are unknown ids; naming B is naming nothing.
    assert {r["id"] for r in api.get(f"{API}jobs/").json()["results"]} == {a["push"].pk, a["pull"].pk}
    assert [r["id"] for r in api.get(f"{API}conflicts/").json()["results"]] == [a["conflict"].pk]
    for pk in b_jobs:
        assert api.get(f"{API}jobs/{pk}/").status_code == 404
        assert api.post(f"{API}jobs/{pk}/cancel/", {}, format="json").status_code == 404
    assert api.get(f"{API}conflicts/{b['conflict'].pk}/").status_code == 404
    for keep in ({"keep": "qbo"}, {"keep": "host"}, {"keep": "value", "value": "x@example.com"}):
        assert api.post(f"{API}conflicts/{b['conflict'].pk}/resolve/", keep, format="json").status_code == 404
    b_customer = b["customers"][0].pk
    assert api.get(f"{API}entities/customer/{b_customer}/status/").status_code == 404
    assert api.post(f"{API}sync/", {"entity": "customer", "ids": [str(b_customer)]}, format="json").status_code == 400
    for ref in ("org-b", str(b["org"].pk)):
        assert api.get(f"{API}jobs/?org={ref}").status_code == 404
        assert api.get(f"{API}conflicts/", HTTP_X_ORGANIZATION=ref).status_code == 404
        for path in ("progress/", "connection/", f"entities/customer/{b_customer}/status/"):
            assert api.get(f"{API}{path}?org={ref}").status_code == 404, path
        started = api.post(f"{API}sync/?org={ref}", {"entity": "customer", "all": True}, format="json")
        assert started.status_code == 404
        assert api.post(f"{API}sync/", {"entity": "item", "direction": "pull"}, format="json",
                        HTTP_X_ORGANIZATION=ref).status_code == 404

    # --- admin: B's rows are not in any changelist (nor B's name in its filters); B's pages and views are out of reach.
    rows = {"qbo_sync/syncjob": ("push", "pull"), "qbo_sync/queueitem": ("items",),
            "qbo_sync/conflict": ("conflict",), "qbo_sync/synclog": ("log",), "qbo_sync/pullcursor": ("cursor",),
            "qbo_sync/qboconnection": ("connection",), "batchly/customer": ("customers",)}
    for model, keys in rows.items():
        response = client.get(admin_url(model))
        assert response.status_code == 200, model
        shown = {row.pk for row in response.context["cl"].queryset}
        for key in keys:
            mine = a[key] if isinstance(a[key], list) else [a[key]]
            theirs = b[key] if isinstance(b[key], list) else [b[key]]
            assert {row.pk for row in mine} <= shown, model
            assert not {row.pk for row in theirs} & shown, model
            for row in theirs:
                page = client.get(admin_url(model, row.pk))
                assert page.status_code in (302, 404) and b["org"].name not in page.content.decode(), model
        assert b["org"].name not in response.content.decode(), model
    filtered = client.get(admin_url("qbo_sync/queueitem") + f"?job__id__exact={b['push'].pk}")
    assert list(filtered.context["cl"].queryset) == []
    assert client.get(admin_url("qbo_sync/conflict", b["conflict"].pk, "resolve")).status_code == 404
    assert client.post(admin_url("qbo_sync/conflict", b["conflict"].pk, "resolve"),
                       {"keep": "qbo"}).status_code == 404
    for view in ("reconnect", "disconnect"):
        assert client.post(admin_url("qbo_sync/qboconnection", b["connection"].pk, view)).status_code == 404
    connect_form = client.get("/admin/qbo_sync/qboconnection/connect/")
    assert {o.pk for o in connect_form.context["form"].fields["organization"].queryset} == {a["org"].pk}
    assert client.post("/admin/qbo_sync/qboconnection/connect/", {"organization": b["org"].pk}).status_code == 200

    def act(model: str, action: str, pks) -> None:
        client.post(admin_url(model), {"action": action, "_selected_action": [str(pk) for pk in pks], "index": "0",
                                       "post": "yes"})

    act("qbo_sync/syncjob", "cancel_jobs", b_jobs)
    act("qbo_sync/queueitem", "cancel_pending", [i.pk for i in b["items"]])
    act("qbo_sync/conflict", "keep_quickbooks", [b["conflict"].pk])
    act("qbo_sync/qboconnection", "disconnect_selected", [b["connection"].pk])
    act("batchly/customer", "push_selected", [c.pk for c in b["customers"]])

    # --- pages: progress, dashboard, connect, disconnect.
    for pk in b_jobs:
        assert client.get(f"/qbo/jobs/{pk}/progress/").status_code == 404
    assert client.get(f"/qbo/jobs/{a['push'].pk}/progress/").status_code == 200
    for ref in ("org-b", str(b["org"].pk)):
        assert client.get(f"/qbo/dashboard/?org={ref}").status_code == 404
        assert client.get(f"/qbo/connect/{ref}/").status_code == 404
        assert client.get(f"/qbo/disconnect/?org={ref}").status_code == 404
        assert client.post("/qbo/disconnect/", {"org": ref}).status_code == 404
    dashboard = client.get("/qbo/dashboard/").content.decode()
    assert a["org"].name in dashboard and b["org"].name not in dashboard

    # --- B is exactly as it was.
    assert set(SyncJob.objects.filter(organization=b["org"]).values_list("pk", flat=True)) == b_jobs
    assert set(SyncJob.objects.filter(organization=b["org"]).values_list("state", flat=True)) == {"pending"}
    assert {i.status for i in QueueItem.objects.filter(organization=b["org"])} == {"pending"}
    assert QueueItem.objects.filter(organization=b["org"]).count() == len(b["items"])
    b["conflict"].refresh_from_db()
    b["connection"].refresh_from_db()
    assert b["conflict"].state == "open" and b["connection"].status == "connected"
    assert [c.email for c in Customer.objects.filter(organization=b["org"]).order_by("pk")] == \
        [c.email for c in b["customers"]]


def legacy(*notes: tuple[str, str, str]) -> bytes:
    return json.dumps({"eventNotifications": [
        {"realmId": realm, "dataChangeEvent": {"entities": [
            {"name": entity, "id": qbo_id, "operation": "Update", "lastUpdated": "2026-11-23T10:00:00Z"}]}}
        for realm, entity, qbo_id in notes]}).encode()


def deliver(client, body: bytes):
    return client.post("/qbo/webhooks/", data=body, content_type="application/json",
                       HTTP_INTUIT_SIGNATURE=signature(body, VERIFIER))


def test_webhook_events_for_a_realm_only_touch_its_organization(client, settings) -> None:
    settings.QBO_SYNC = {**settings.QBO_SYNC, "WEBHOOK_VERIFIER_TOKEN": VERIFIER}
    org_a, org_b = OrganizationFactory(slug="hook-a"), OrganizationFactory(slug="hook-b")
    connect(org_a, "9201")
    connect(org_b, "9202")

    assert deliver(client, legacy(("9201", "Customer", "1"), ("9201", "Item", "5"))).json()["stored"] == 2
    assert set(SyncJob.objects.values_list("organization_id", "kind", "entity_type")) == {
        (org_a.pk, "pull", "Customer"), (org_a.pk, "pull", "Item")}
    assert set(WebhookEvent.objects.values_list("organization_id", flat=True)) == {org_a.pk}
    assert not QueueItem.objects.filter(organization=org_b).exists()

    # The same QuickBooks ids under B's realm are B's events, and a realm nobody connected touches no one.
    answer = deliver(client, legacy(("9202", "Customer", "1"), ("9999", "Customer", "1"))).json()
    assert answer == {"stored": 1, "duplicates": 0, "ignored": 1}
    assert set(SyncJob.objects.filter(organization=org_b).values_list("kind", "entity_type")) == {
        ("pull", "Customer")}
    assert SyncJob.objects.filter(organization=org_a).count() == 2
    assert not SyncJob.objects.exclude(organization__in=[org_a, org_b]).exists()


def test_without_a_resolver_staff_cannot_connect_or_disconnect_any_organization(client, settings) -> None:
    """No resolver means only superusers see organizations (the API's and the admin's rule): the connect and
    disconnect pages follow it too."""
    settings.QBO_SYNC = {**settings.QBO_SYNC, "ORGANIZATION_RESOLVER": None}
    org = OrganizationFactory(slug="no-resolver")
    connection = connect(org, "9301")
    client.force_login(MembershipFactory(organization=org, user=UserFactory(username="staffer")).user)
    for ref in ("no-resolver", str(org.pk)):
        assert client.get(f"/qbo/connect/{ref}/").status_code == 404
        assert client.get(f"/qbo/disconnect/?org={ref}").status_code == 404
        assert client.post("/qbo/disconnect/", {"org": ref}).status_code == 404
    connection.refresh_from_db()
    assert connection.status == "connected"
