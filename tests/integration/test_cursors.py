"""Incremental pulls lose nothing: 1,000+ changes per entity (beyond CDC's 1,000-object cap), inactive records,
deletions, and a cursor that only advances past what was committed."""

from __future__ import annotations

from unittest import mock

import pytest

from batchly.models import Customer
from qbo_sync.client import BatchOperation
from qbo_sync.models import EntityMapping, PullCursor, QueueItem, SyncLog
from qbo_sync.services import pull
from qbo_sync.services.queue import create_job, start_pull
from tests.factories import InvoiceFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def batch_write(accountant, operation, payloads, tag):
    for start in range(0, len(payloads), 30):
        ops = [BatchOperation(bid=f"b{n}", operation=operation, entity="Customer", payload=p)
               for n, p in enumerate(payloads[start:start + 30])]
        results = accountant.batch(ops, request_id=f"{tag}-{start}")
        assert all(r.ok for r in results), [r.error for r in results if not r.ok]


@pytest.fixture
def roomy_realm(qbo_sandbox, qbo_realm):
    qbo_sandbox.configure(qbo_realm, rate_limit=100_000, batch_rate=100_000, concurrency=50)
    return qbo_realm


def test_1200_changes_and_deactivations_all_arrive(org, accountant, run_queue, roomy_realm) -> None:
    batch_write(accountant, "create", [{"DisplayName": f"QBO Customer {n:04d}", "CompanyName": "v1"}
                                       for n in range(1200)], "create")
    start_pull(org.pk, "Customer")
    run_queue()
    assert Customer.objects.filter(organization=org).count() == 1200

    rows = list(accountant.query_all("SELECT * FROM Customer"))
    assert len(rows) == 1200
    updates = [{"Id": r["Id"], "SyncToken": r["SyncToken"], "sparse": True, "CompanyName": "v2"} for r in rows[:1150]]
    updates += [{"Id": r["Id"], "SyncToken": r["SyncToken"], "sparse": True, "Active": False} for r in rows[1150:]]
    batch_write(accountant, "update", updates, "update")

    start_pull(org.pk, "Customer")
    run_queue()

    customers = Customer.objects.filter(organization=org)
    assert customers.filter(company_name="v2").count() == 1150
    assert customers.filter(active=False).count() == 50
    assert not QueueItem.objects.filter(status__in=["failed", "dead"]).exists()
    assert EntityMapping.objects.filter(entity_type="Customer").count() == 1200


def test_the_cursor_does_not_advance_past_a_failed_pull(org, accountant, run_queue) -> None:
    start_pull(org.pk, "Customer")
    run_queue()
    before = PullCursor.objects.get(organization_id=org.pk, entity_type="Customer").changed_since
    accountant.create("Customer", {"DisplayName": "Arrives later"}, request_id="late-1")
    with mock.patch.object(pull, "apply_page", side_effect=RuntimeError("worker died mid-page")):
        start_pull(org.pk, "Customer")
        run_queue()
    assert PullCursor.objects.get(organization_id=org.pk, entity_type="Customer").changed_since == before
    QueueItem.objects.filter(operation="pull").exclude(status="completed").update(status="cancelled")
    start_pull(org.pk, "Customer")  # the next pull starts from the same cursor
    run_queue()
    assert Customer.objects.filter(organization=org, display_name="Arrives later").exists()


def test_an_invoice_deleted_in_quickbooks_is_flagged_not_forgotten(org, accountant, run_queue) -> None:
    invoice = InvoiceFactory(organization=org)
    create_job(org.pk, "push", "Invoice", [invoice.pk], "push")
    run_queue()
    start_pull(org.pk, "Payment")
    run_queue()
    mapping = EntityMapping.objects.get(entity_type="Invoice", object_id=str(invoice.pk))
    current = accountant.read("Invoice", mapping.qbo_id)
    accountant.delete("Invoice", mapping.qbo_id, current["SyncToken"], request_id="del-1")
    start_pull(org.pk, "Payment")
    run_queue()
    mapping.refresh_from_db()
    assert mapping.state == "failed" and "deleted in QuickBooks" in mapping.last_error
    assert SyncLog.objects.filter(event="deleted_in_qbo", object_id=str(invoice.pk)).exists()
