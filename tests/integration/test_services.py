"""The use-case services every surface calls: start jobs, previews, conflict resolution, record status."""

from __future__ import annotations

import pytest
from django.utils import timezone

from batchly.models import Customer
from qbo_sync.models import Conflict, EntityMapping, QueueItem
from qbo_sync.services import jobs
from qbo_sync.services.conflicts import resolve_conflict
from qbo_sync.services.jobs import QboInputError
from qbo_sync.services.status import organization_overview, record_status, states_for
from tests.factories import CustomerFactory, InvoiceFactory, OrganizationFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_bad_requests_are_refused_and_change_nothing(org) -> None:
    with pytest.raises(QboInputError, match="cannot be pushed; choose one of"):
        jobs.start_push(org.pk, "SalesOrder")
    with pytest.raises(QboInputError, match="No customer with id 999999"):
        jobs.start_push(org.pk, "Customer", ["999999"])
    other = CustomerFactory()  # another organization's row
    with pytest.raises(QboInputError, match=f"No customer with id {other.pk}"):
        jobs.start_push(org.pk, "Customer", [other.pk])
    with pytest.raises(QboInputError, match="not connected"):
        jobs.start_push(OrganizationFactory().pk, "Customer")
    with pytest.raises(QboInputError, match="cannot be pulled"):
        jobs.start_pull(org.pk, "Invoice")
    assert not QueueItem.objects.filter(job__isnull=False).exists()


def test_preview_tells_what_a_push_would_do(org, run_queue) -> None:
    synced = CustomerFactory(organization=org)
    run_queue()
    changed = CustomerFactory(organization=org)
    run_queue()
    Customer.objects.filter(pk=changed.pk).update(phone="1", updated_at=timezone.now())
    QueueItem.objects.all().delete()
    new = Customer.objects.create(organization=org, display_name="Brand New")
    rows = {r.object_id: r for r in jobs.preview_push(org.pk, "Customer", [synced.pk, changed.pk, new.pk])}
    assert rows[str(synced.pk)].action == "skip"
    assert rows[str(changed.pk)].action == "update" and "phone" in rows[str(changed.pk)].reason
    assert rows[str(new.pk)].action == "create"
    empty = InvoiceFactory(organization=org, lines=0)
    good = InvoiceFactory(organization=org)
    inv_rows = {r.object_id: r for r in jobs.preview_push(org.pk, "Invoice", [empty.pk, good.pk])}
    assert inv_rows[str(empty.pk)].action == "refused" and inv_rows[str(empty.pk)].reason.startswith("invalid: ")
    assert inv_rows[str(good.pk)].action == "create"
    assert not EntityMapping.objects.filter(entity_type="Invoice").exists()  # a preview sends nothing


def test_a_job_pushes_everything_and_reports_status(org, accountant, run_queue) -> None:
    customers = [CustomerFactory(organization=org) for _ in range(3)]
    QueueItem.objects.all().delete()
    job = jobs.start_push(org.pk, "Customer")
    assert job.total == 3
    run_queue()
    job.refresh_from_db()
    assert job.state == "completed"
    status = record_status(org.pk, "Customer", str(customers[0].pk))
    assert status["state"] == "synced" and status["qbo_id"]
    badges = states_for(org.pk, "Customer", [str(c.pk) for c in customers])
    assert {b["state"] for b in badges.values()} == {"synced"}
    overview = organization_overview(org.pk)
    assert overview["connection"]["status"] == "connected"


def test_resolving_a_held_conflict_writes_both_sides(org, accountant, run_queue, settings) -> None:
    settings.QBO_SYNC = {**settings.QBO_SYNC, "CRITICAL_FIELDS": {"Customer": ["email"]}}
    customer = CustomerFactory(organization=org, email="base@example.com")
    run_queue()
    mapping = EntityMapping.objects.get(object_id=str(customer.pk), entity_type="Customer")
    Customer.objects.filter(pk=customer.pk).update(email="batchly@example.com", updated_at=timezone.now())
    current = accountant.read("Customer", mapping.qbo_id)
    accountant.update("Customer", {"Id": mapping.qbo_id, "SyncToken": current["SyncToken"], "sparse": True,
                                   "PrimaryEmailAddr": {"Address": "qbo@example.com"}}, request_id="acct-x")
    jobs.start_pull(org.pk, "Customer")
    run_queue()
    conflict = Conflict.objects.get(state="open")

    resolve_conflict(conflict, "host")
    run_queue()

    assert accountant.read("Customer", mapping.qbo_id)["PrimaryEmailAddr"]["Address"] == "batchly@example.com"
    conflict.refresh_from_db()
    assert conflict.state == "resolved" and conflict.winner == "host"
    assert EntityMapping.objects.get(pk=mapping.pk).state == "synced"
    with pytest.raises(QboInputError, match="already resolved"):
        resolve_conflict(conflict, "qbo")


def test_ids_that_cannot_be_keys_are_unknown_ids(org) -> None:
    for bad in ("abc", str(2**70), "-1"):
        with pytest.raises(QboInputError, match="No customer with id"):
            jobs.start_push(org.pk, "Customer", [bad])
