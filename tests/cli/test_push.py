"""`qbo_sync push`: dry run, waiting with progress (lines or a bar), --no-wait, JSON, bad input."""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError
from django.utils import timezone

from batchly.models import Customer
from qbo_sync.models import EntityMapping, QboConnection, QueueItem, SyncJob
from tests.cli.conftest import last_json
from tests.factories import CustomerFactory, OrganizationFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _state() -> tuple:
    return (SyncJob.objects.count(), QueueItem.objects.count(), EntityMapping.objects.count(),
            list(QueueItem.objects.values_list("pk", "status").order_by("pk")))


def test_dry_run_previews_and_changes_nothing(org, run_queue, qbo, accountant) -> None:
    synced = CustomerFactory(organization=org)
    run_queue()
    changed = CustomerFactory(organization=org)
    run_queue()
    Customer.objects.filter(pk=changed.pk).update(phone="1", updated_at=timezone.now())
    QueueItem.objects.all().delete()
    new = Customer.objects.create(organization=org, display_name="Brand New")
    before = _state()

    out = qbo("push", "Customer", "--all", "--dry-run", "--org", org.slug)

    assert f"{org.slug}: dry run, 3 row(s): 1 create, 1 update, 1 skip" in out
    assert "changed: phone" in out and "already in step" in out
    assert out.strip().endswith("Dry run: nothing was queued or sent.")
    assert _state() == before
    assert accountant.count("Customer", "Active IN (true, false)") == 2

    data = last_json(qbo("push", "customers", "--ids", f"{new.pk},{synced.pk}", "--dry-run", "--org", org.slug,
                         "--json"))
    assert data["dry_run"] is True and data["entity"] == "customers"
    (report,) = data["organizations"]
    assert report["organization"] == org.slug
    assert report["summary"] == {"create": 1, "skip": 1}
    assert {r["id"]: r["action"] for r in report["rows"]} == {str(new.pk): "create", str(synced.pk): "skip"}
    assert set(report["rows"][0]) == {"id", "label", "action", "reason"}
    assert _state() == before


def test_push_waits_and_prints_a_progress_line_per_chunk(org, qbo, accountant) -> None:
    customers = [CustomerFactory(organization=org) for _ in range(3)]
    QueueItem.objects.all().delete()

    out = qbo("push", "Customer", "--ids", ",".join(str(c.pk) for c in customers[:2]), "--org", org.slug)

    lines = out.splitlines()
    assert lines[0].startswith("Queued job ")
    assert any(line.startswith("chunk 1: ") and "/min" in line and "ETA" in line for line in lines)
    job = SyncJob.objects.get()
    assert job.state == "completed" and job.total == 2
    assert lines[-1] == (f"Job {job.pk} (push Customer): completed, 2/2 done, 2 completed, 0 failed, 0 dead.")
    assert "\r" not in out  # not a terminal: plain lines
    assert EntityMapping.objects.filter(entity_type="Customer", qbo_id__isnull=False).count() == 2
    assert accountant.count("Customer", "Active IN (true, false)") == 2


def test_push_on_a_terminal_draws_a_bar(org, qbo) -> None:
    for _ in range(3):
        CustomerFactory(organization=org)
    QueueItem.objects.all().delete()

    out = qbo("push", "Customer", "--all", "--org", org.slug, tty=True)

    assert "\r[" in out and "3/3 100.0%" in out and "/min" in out and "ETA" in out
    assert "chunk 1:" not in out
    assert SyncJob.objects.get().state == "completed"


def test_no_wait_only_queues_and_json_is_the_last_line(org, qbo) -> None:
    customers = [CustomerFactory(organization=org) for _ in range(2)]
    QueueItem.objects.all().delete()

    out = qbo("push", "Customer", "--all", "--no-wait", "--json")  # every connected organization: just this one

    assert len(out.strip().splitlines()) == 1
    data = last_json(out)
    assert data["waited"] is False and data["stopped"] is None
    (job,) = data["jobs"]
    assert job["kind"] == "push" and job["entity_type"] == "Customer" and job["organization_id"] == org.pk
    assert job["total"] == 2 and job["pending"] == 2 and job["state"] == "pending"
    for key in ("job", "percent", "rate_per_minute", "eta_seconds", "done", "remaining", "failed", "dead"):
        assert key in job
    assert set(QueueItem.objects.values_list("object_id", flat=True)) == {str(c.pk) for c in customers}
    assert not EntityMapping.objects.filter(qbo_id__isnull=False).exists()

    text = qbo("push", "Customer", "--all", "--org", org.slug, "--no-wait")
    assert "Not waiting (--no-wait)" in text


def test_wait_json_reports_the_finished_job(org, qbo) -> None:
    CustomerFactory(organization=org)
    QueueItem.objects.all().delete()
    data = last_json(qbo("push", "Customer", "--all", "--org", org.slug, "--json"))
    assert data["waited"] is True and data["stopped"] == "finished"
    assert data["jobs"][0]["state"] == "completed" and data["jobs"][0]["percent"] == 100.0


def test_waiting_stops_when_the_connection_needs_reauthorisation(org, qbo, connection) -> None:
    CustomerFactory(organization=org)
    QueueItem.objects.all().delete()
    QboConnection.objects.filter(pk=connection.pk).update(status=QboConnection.Status.NEEDS_REAUTH)
    out = qbo("push", "Customer", "--all", "--org", org.slug)
    assert "Stopped waiting: the QuickBooks connection is not usable" in out
    assert QueueItem.objects.get().status == "pending"  # kept for after the reconnect


@pytest.mark.parametrize(("args", "message"), [
    (["SalesOrder", "--all"], "'SalesOrder' cannot be pushed; choose one of: Customer, Item, Invoice."),
    (["Customer", "--ids", "999999"], "No customer with id 999999 in this organization."),
    (["Customer", "--ids", "1", "--all"], "Give either --ids or --all, not both."),
    (["Customer"], "Say what to push: --ids 1,2,3 or --all."),
    ([], "Name what to push: one of Customer, Item, Invoice"),
    (["Customer", "--ids", "1,,2"], "--ids takes a comma-separated list of ids"),
    (["Customer", "--all", "--timeout", "0"], "--timeout must be a positive number of seconds."),
    (["Customer", "--ids", "999999", "--dry-run"], "No customer with id 999999 in this organization."),
])
def test_bad_input_is_one_clear_error_and_changes_nothing(org, qbo, args, message) -> None:
    CustomerFactory(organization=org)
    before = _state()
    with pytest.raises(CommandError) as err:
        qbo("push", *args, "--org", org.slug)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert _state() == before


def test_unknown_or_unconnected_organizations_are_refused(org, qbo) -> None:
    other = CustomerFactory()  # another organization's row, not connected
    before = _state()
    with pytest.raises(CommandError, match="No organization with slug 'nope'"):
        qbo("push", "Customer", "--all", "--org", "nope")
    with pytest.raises(CommandError, match="not connected to QuickBooks; connect it first"):
        qbo("push", "Customer", "--all", "--org", other.organization.slug)
    with pytest.raises(CommandError, match=f"No customer with id {other.pk} in this organization"):
        qbo("push", "Customer", "--ids", str(other.pk), "--org", org.slug)
    with pytest.raises(CommandError, match="--ids needs --org ORG"):
        qbo("push", "Customer", "--ids", str(other.pk))
    assert _state() == before


def test_no_connected_organization_at_all(db, qbo) -> None:
    OrganizationFactory()
    with pytest.raises(CommandError, match="No organization is connected to QuickBooks"):
        qbo("push", "Customer", "--all")
    assert not SyncJob.objects.exists()
