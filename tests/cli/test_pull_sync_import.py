"""`qbo_sync pull`, `sync` and `import`."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management.base import CommandError
from django.utils import timezone

from batchly.models import Customer
from qbo_sync.models import EntityMapping, PullCursor, QueueItem, SyncJob
from qbo_sync.services.plans import OVERLAP, plan_pull
from tests.cli.conftest import last_json
from tests.factories import CustomerFactory, ItemFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _state() -> tuple:
    return (SyncJob.objects.count(), QueueItem.objects.count(), EntityMapping.objects.count(),
            Customer.objects.count(), list(PullCursor.objects.values_list("entity_type", "changed_since",
                                                                          "last_success_at").order_by("pk")))


def _qbo_customers(accountant, *names: str) -> None:
    for i, name in enumerate(names):
        accountant.create("Customer", {"DisplayName": name}, request_id=f"cli-{name}-{i}")


def test_pull_reads_qbo_changes_with_progress(org, accountant, qbo) -> None:
    _qbo_customers(accountant, "Made In QBO 1", "Made In QBO 2")

    out = qbo("pull", "Customer", "--org", org.slug)

    assert out.startswith("Queued job ") and "chunk 1: 1/1 done" in out
    assert "(pull Customer): completed, 1/1 done" in out
    assert set(Customer.objects.filter(organization=org).values_list("display_name", flat=True)) == {
        "Made In QBO 1", "Made In QBO 2"}
    assert PullCursor.objects.get(organization=org, entity_type="Customer").changed_since is not None


def test_pull_dry_run_counts_in_qbo_and_writes_nothing(org, accountant, qbo, run_queue) -> None:
    _qbo_customers(accountant, "A", "B", "C")
    before = _state()

    data = last_json(qbo("pull", "Customer", "--org", org.slug, "--dry-run", "--json"))

    assert data == {"dry_run": True, "entity": "Customer", "organizations": [
        {"organization": org.slug, "mode": "full", "since": None, "counts": {"Customer": 3}}]}
    assert _state() == before
    text = qbo("pull", "customers", "--dry-run")  # every connected organization; plural accepted
    assert f"{org.slug}: dry run, a full pull of Customer (everything) would read 3 Customer(s)." in text
    assert text.strip().endswith("nothing was queued or written.")

    since = timezone.now() + dt.timedelta(days=-1)
    data = last_json(qbo("pull", "Payment", "--org", org.slug, "--since", since.isoformat(), "--dry-run", "--json"))
    (report,) = data["organizations"]
    assert report["mode"] == "incremental" and set(report["counts"]) == {"Invoice", "Payment", "RefundReceipt"}
    assert _state() == before


def test_since_is_carried_by_the_job_and_read_once(org, accountant, qbo) -> None:
    since = dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.UTC)
    data = last_json(qbo("pull", "Item", "--org", org.slug, "--since", "2024-05-01T09:30:00Z", "--no-wait",
                         "--json"))
    (job,) = data["jobs"]
    assert job["kind"] == "pull" and job["entity_type"] == "Item" and job["state"] == "pending"
    assert "since 2024-05-01T09:30:00+00:00" in job["description"]
    # The command writes no cursor: the job carries the window, and the pull's plan reads from it.
    assert SyncJob.objects.get().options == {"full": False, "since": "2024-05-01T09:30:00+00:00"}
    assert not PullCursor.objects.filter(organization=org, entity_type="Item").exists()
    plan = plan_pull(org.pk, "Item", since=since)
    assert (plan.mode, plan.since, plan.read_from) == ("incremental", since, since - OVERLAP)

    # A second --since while that pull is queued would not apply: refused, nothing started.
    with pytest.raises(CommandError, match=r"a pull of Item is already queued or running \(job \d+\)"):
        qbo("pull", "Item", "--org", org.slug, "--since", "2024-06-01")
    assert SyncJob.objects.count() == 1

    # Processing it reads QBO from there and moves the cursor on.
    out = qbo("drain", "--org", org.slug)
    assert "Drained 1 item(s)" in out
    assert PullCursor.objects.get(organization=org, entity_type="Item").changed_since > since


def test_naive_since_is_in_the_time_zone(org, qbo, settings) -> None:
    settings.TIME_ZONE = "America/New_York"
    qbo("pull", "Customer", "--org", org.slug, "--since", "2024-05-01", "--no-wait")
    assert SyncJob.objects.get().options["since"] == "2024-05-01T04:00:00+00:00"


@pytest.mark.parametrize(("args", "message"), [
    (["Invoice"], "'Invoice' cannot be pulled; choose one of: Customer, Item, Payment."),
    ([], "Name what to pull: one of Customer, Item, Payment"),
    (["Customer", "--full", "--since", "2024-01-01"], "Give either --full or --since, not both."),
    (["Customer", "--since", "yesterday"], "--since must be an ISO 8601 date or datetime"),
    (["Customer", "--since", "2024-13-45"], "--since must be an ISO 8601 date or datetime"),
    (["Customer", "--since", "2999-01-01"], "--since 2999-01-01 is in the future."),
    (["Customer", "--since", "yesterday", "--dry-run"], "--since must be an ISO 8601 date or datetime"),
])
def test_pull_bad_input(org, qbo, args, message) -> None:
    before = _state()
    with pytest.raises(CommandError) as err:
        qbo("pull", *args, "--org", org.slug)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert _state() == before


def test_sync_runs_a_whole_cycle(org, accountant, qbo) -> None:
    _qbo_customers(accountant, "From QBO")
    CustomerFactory(organization=org, display_name="From Batchly")
    ItemFactory(organization=org)
    QueueItem.objects.all().delete()

    out = qbo("sync", "--org", org.slug, "--json")

    data = last_json(out)
    assert len(out.strip().splitlines()) == 1
    assert data["waited"] is True and data["stopped"] == "finished"
    kinds = [(j["kind"], j["entity_type"]) for j in data["jobs"]]
    assert kinds[:2] == [("pull", "Customer"), ("pull", "Item")] and kinds[-1] == ("pull", "Payment")
    assert ("push", "Customer") in kinds and ("push", "Item") in kinds
    assert {j["state"] for j in data["jobs"]} == {"completed"}
    assert accountant.count("Customer", "Active IN (true, false)") == 2
    assert Customer.objects.filter(organization=org, display_name="From QBO").exists()

    text = qbo("sync", "--no-wait")
    assert text.count("Queued job ") == 3  # nothing left to push: three pulls


def test_import_links_by_natural_key(org, accountant, qbo) -> None:
    accountant.create("Customer", {"DisplayName": "Shared Name"}, request_id="imp-1")
    _qbo_customers(accountant, "Only In QBO")
    shared = CustomerFactory(organization=org, display_name="Shared Name")
    QueueItem.objects.all().delete()

    out = qbo("import", "--org", org.slug)

    assert out.count("Queued job ") == 3 and "Import Customers" in out
    assert out.count(": completed,") == 3
    assert EntityMapping.objects.get(entity_type="Customer", object_id=str(shared.pk)).qbo_id
    assert Customer.objects.filter(organization=org).count() == 2  # linked, not duplicated


def test_sync_and_import_need_a_connection(db, qbo) -> None:
    other = CustomerFactory().organization
    for sub in ("sync", "import"):
        with pytest.raises(CommandError, match="not connected to QuickBooks; connect it first"):
            qbo(sub, "--org", other.slug)
        with pytest.raises(CommandError, match="No organization with slug"):
            qbo(sub, "--org", "nope")
    assert not SyncJob.objects.exists()
