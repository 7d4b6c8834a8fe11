"""`qbo_sync status` and `qbo_sync conflicts [list | resolve]`."""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError
from django.utils import timezone

from batchly.models import Customer
from qbo_sync.models import Conflict, EntityMapping, QboConnection, QueueItem
from qbo_sync.services import jobs
from tests.cli.conftest import last_json
from tests.factories import CustomerFactory, OrganizationFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def conflict(org, accountant, run_queue, settings) -> Conflict:
    """An open conflict on a critical field: Batchly and QuickBooks both changed the customer's email."""
    settings.QBO_SYNC = {**settings.QBO_SYNC, "CRITICAL_FIELDS": {"Customer": ["email"]}}
    customer = CustomerFactory(organization=org, email="base@example.com")
    run_queue()
    mapping = EntityMapping.objects.get(object_id=str(customer.pk), entity_type="Customer")
    Customer.objects.filter(pk=customer.pk).update(email="batchly@example.com", updated_at=timezone.now())
    current = accountant.read("Customer", mapping.qbo_id)
    accountant.update("Customer", {"Id": mapping.qbo_id, "SyncToken": current["SyncToken"], "sparse": True,
                                   "PrimaryEmailAddr": {"Address": "qbo@example.com"}}, request_id="cli-conflict")
    jobs.start_pull(org.pk, "Customer")
    run_queue()
    return Conflict.objects.get(state="open")


def test_status_per_organization_and_json(org, qbo, run_queue, connection) -> None:
    CustomerFactory(organization=org)
    run_queue()
    OrganizationFactory(slug="idle-co", name="Idle Co")
    qbo("schedules", "install")

    out = qbo("status")

    assert f"{org.name} ({org.slug})" in out and "Idle Co (idle-co)" in out
    assert "connection: connected, Sandbox Company, realm " in out and "access token expires" in out
    assert "queue: pending 0, processing 0, completed 1, failed 0, dead 0" in out
    assert "conflicts: 0 open, 0 auto-resolved, 0 resolved" in out
    assert "Customer: push job" not in out  # a save's push is not a job
    assert "connection: not connected" in out
    assert "to do: Not connected: run `manage.py qbo_sync connect --org idle-co`" in out
    assert "Schedules:" in out and "qbo_sync.drain" in out

    data = last_json(qbo("status", "--org", org.slug, "--json"))
    assert set(data) == {"organizations", "schedules"}
    (report,) = data["organizations"]
    assert report["organization"] == org.slug and report["name"] == org.name
    assert set(report) >= {"connection", "queue", "conflicts", "pulls", "last_jobs", "last_runs"}
    assert report["connection"]["status"] == "connected" and report["connection"]["action"] == ""
    assert report["connection"]["realm_id"] == connection.realm_id
    assert "access_token" not in str(report["connection"].keys() - {"access_token_expires_at"})
    assert report["queue"]["completed"] == 1
    assert report["conflicts"] == {"open": 0, "auto_resolved": 0, "resolved": 0}
    assert {s["name"] for s in data["schedules"]} >= {"qbo_sync.drain"}


def test_status_says_what_to_do_when_reauthorisation_is_needed(org, qbo, connection) -> None:
    QboConnection.objects.filter(pk=connection.pk).update(status=QboConnection.Status.NEEDS_REAUTH,
                                                          last_error="invalid_grant: refresh token expired")
    qbo("pull", "Customer", "--org", org.slug, "--no-wait")
    out = qbo("status", "--org", org.slug)
    assert "connection: needs_reauth" in out
    assert "last error: invalid_grant: refresh token expired" in out
    assert f"to do: QuickBooks needs re-authorisation: run `manage.py qbo_sync connect --org {org.slug}`" in out
    assert "Customer: pull job" in out and "pending" in out
    data = last_json(qbo("status", "--org", org.slug, "--json"))
    conn = data["organizations"][0]["connection"]
    assert conn["status"] == "needs_reauth" and "connect --org" in conn["action"]
    assert data["organizations"][0]["last_runs"]["Customer"]["pull"]["state"] == "pending"
    with pytest.raises(CommandError, match="No organization with slug 'nope'"):
        qbo("status", "--org", "nope")


def test_conflicts_list_and_resolve_keep_host(org, qbo, conflict, accountant, run_queue) -> None:
    out = qbo("conflicts")
    assert out.startswith("1 open conflict(s):")
    # "#2 1 Customer 1" (a project naming organizations by id) said nothing of which number was which.
    assert f"#{conflict.pk} organization {org.slug}: Customer {conflict.mapping.object_id}" in out
    assert out.rstrip().endswith("`qbo_sync conflicts resolve ID --keep host|qbo` (or `--value V` to keep an "
                                 "edited value).")
    assert 'email: Batchly "batchly@example.com" vs QuickBooks "qbo@example.com"' in out
    data = last_json(qbo("conflicts", "list", "--org", org.slug, "--json"))
    assert data["count"] == 1 and data["state"] == "open"
    row = data["conflicts"][0]
    assert {k: row[k] for k in ("id", "organization", "entity", "field", "host", "qbo", "state")} == {
        "id": conflict.pk, "organization": org.slug, "entity": "Customer", "field": "email",
        "host": "batchly@example.com", "qbo": "qbo@example.com", "state": "open"}

    out = qbo("conflicts", "resolve", str(conflict.pk), "--keep", "host")
    assert out.strip() == (f"Resolved conflict #{conflict.pk} (Customer {conflict.mapping.object_id}.email): kept "
                           '"batchly@example.com" (queued to push to QuickBooks).')
    run_queue()
    assert accountant.read("Customer", conflict.mapping.qbo_id)["PrimaryEmailAddr"]["Address"] == \
        "batchly@example.com"
    assert qbo("conflicts").strip() == "No open conflicts."
    data = last_json(qbo("conflicts", "--state", "resolved", "--json"))
    assert data["conflicts"][0]["winner"] == "host"

    with pytest.raises(CommandError, match=f"Conflict {conflict.pk} was already resolved."):
        qbo("conflicts", "resolve", str(conflict.pk), "--keep", "qbo")


def test_resolve_with_an_edited_value_as_json(org, qbo, conflict) -> None:
    data = last_json(qbo("conflicts", "resolve", str(conflict.pk), "--value", "edited@example.com", "--json"))
    assert data["resolved"]["resolved_value"] == "edited@example.com" and data["resolved"]["state"] == "resolved"
    customer = Customer.objects.get(pk=conflict.mapping.object_id)
    assert customer.email == "edited@example.com"
    assert QueueItem.objects.filter(object_id=str(customer.pk), status="pending").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["resolve"], "Name the conflict: `qbo_sync conflicts resolve ID --keep host|qbo`."),
    (["resolve", "x1"], "A conflict id is a number; got 'x1'."),
    (["resolve", "{id}"], "Say which value to keep: --keep host, --keep qbo or --value V."),
    (["resolve", "{id}", "--keep", "qbo", "--value", "v"], "Give either --keep or --value, not both."),
    (["resolve", "999999", "--keep", "qbo"], "No conflict with id 999999."),
    (["resolve", "{id}", "--keep", "qbo", "--org", "other-co"], "No conflict with id {id} in other-co."),
    (["resolve", "{id}", "--keep", "qbo", "--org", "nope"], "No organization with slug 'nope'."),
    (["list", "{id}"], "`conflicts list` takes no ID, --keep or --value"),
])
def test_conflicts_bad_input_changes_nothing(qbo, conflict, args, message) -> None:
    OrganizationFactory(slug="other-co")
    args = [a.replace("{id}", str(conflict.pk)) for a in args]
    with pytest.raises(CommandError) as err:
        qbo("conflicts", *args)
    assert str(err.value) == message.replace("{id}", str(conflict.pk)) or message in str(err.value)
    conflict.refresh_from_db()
    assert conflict.state == "open"
    assert Customer.objects.get(pk=conflict.mapping.object_id).email == "batchly@example.com"


@pytest.mark.parametrize(("value", "message"), [
    ("not-an-email", "Enter a valid email address."),
    ("nul\x00@example.com", "Null characters are not allowed."),
    ("a" * 100_000, "Enter a valid email address.; Ensure this value has at most 254 characters (it has 100000)."),
])
def test_resolve_refuses_a_value_the_host_field_refuses(qbo, conflict, value, message) -> None:
    with pytest.raises(CommandError) as caught:
        qbo("conflicts", "resolve", str(conflict.pk), "--value", value)
    assert str(caught.value) == f"--value refused, nothing changed: {message}"
    conflict.refresh_from_db()
    assert conflict.state == "open"
    assert Customer.objects.get(pk=conflict.mapping.object_id).email == "batchly@example.com"
