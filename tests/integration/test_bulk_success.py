"""A pushed chunk of invoices records its successes in bulk: a fixed number of statements per chunk, not two UPDATEs
(the mapping and the host's ``mark_sent``) and a transaction per invoice (issue 16, our CPU per written invoice)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from batchly.models import Invoice
from qbo_sync.adapters import InvoiceAdapterMixin
from qbo_sync.models import EntityMapping, QueueItem
from qbo_sync.services.queue import create_job
from tests.factories import InvoiceFactory

pytestmark = pytest.mark.django_db(transaction=True)

SIZE = 12


def _updates_of(queries: CaptureQueriesContext, table: str) -> int:
    return sum(1 for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")
               and table in q["sql"])


def test_a_chunk_of_invoices_is_recorded_with_a_fixed_number_of_updates(org, accountant, run_queue) -> None:
    invoices = [InvoiceFactory(organization=org, lines=1) for _ in range(SIZE)]
    run_queue()  # their customers and items first
    create_job(org.pk, "push", "Invoice", [i.pk for i in invoices], QueueItem.Operation.PUSH)
    with CaptureQueriesContext(connection) as queries:
        report = run_queue()
    assert report.claimed == SIZE

    mappings = {m.object_id: m for m in EntityMapping.objects.filter(entity_type="Invoice")}
    for invoice in invoices:
        invoice.refresh_from_db()
        mapping = mappings[str(invoice.pk)]
        remote = accountant.read("Invoice", mapping.qbo_id)
        assert invoice.status == Invoice.Status.SENT and invoice.sent_at is not None
        assert remote["DocNumber"] == invoice.number and mapping.sync_token == str(remote["SyncToken"])
        assert mapping.state == "synced" and mapping.last_pushed_at is not None and mapping.last_error == ""
        assert mapping.snapshot["doc_number"] == invoice.number and mapping.host_updated_at == invoice.updated_at
    # Before: one UPDATE of the mapping and one of the invoice per invoice (24 and 12 here).
    assert _updates_of(queries, EntityMapping._meta.db_table) <= 3, queries.captured_queries
    assert _updates_of(queries, Invoice._meta.db_table) <= 2, queries.captured_queries


def _selects_of(queries: CaptureQueriesContext, table: str) -> int:
    return sum(1 for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")
               and f'FROM "{table}"' in q["sql"])


def test_the_payment_state_of_a_chunk_is_written_in_bulk(org, accountant, run_queue) -> None:
    """QuickBooks' answers turn invoices already past due when sent into overdue ones: one UPDATE for all of them
    (the host's apply_payment_states), not a save and its locked-invoice SELECT per invoice."""
    past = dt.date.today() - dt.timedelta(days=45)
    overdue = [InvoiceFactory(organization=org, lines=1, issue_date=past) for _ in range(SIZE)]
    current = [InvoiceFactory(organization=org, lines=1) for _ in range(3)]
    run_queue()
    create_job(org.pk, "push", "Invoice", [i.pk for i in overdue + current], QueueItem.Operation.PUSH)
    with CaptureQueriesContext(connection) as queries:
        report = run_queue()
    assert report.claimed == SIZE + 3

    mappings = {m.object_id: m for m in EntityMapping.objects.filter(entity_type="Invoice")}
    for invoice in overdue + current:
        invoice.refresh_from_db()
        remote = accountant.read("Invoice", mappings[str(invoice.pk)].qbo_id)
        assert invoice.status == Invoice.Status.SENT
        assert invoice.amount_due == invoice.total == Invoice.objects.get(pk=invoice.pk).subtotal
        assert str(invoice.amount_due) == f"{remote['Balance']:.2f}"
        assert invoice.payment_status == ("overdue" if invoice in overdue else "open")
        assert mappings[str(invoice.pk)].host_updated_at == invoice.updated_at
    # mark_sent_many and the overdue invoices' one change; before: a SELECT and an UPDATE per overdue invoice.
    assert _updates_of(queries, Invoice._meta.db_table) <= 2, queries.captured_queries
    assert _selects_of(queries, Invoice._meta.db_table) <= 6, queries.captured_queries


def test_a_host_adapter_without_a_bulk_payment_form_applies_each_state() -> None:
    class OnlyApply(InvoiceAdapterMixin):
        def __init__(self) -> None:
            self.applied: list[tuple[str, str]] = []

        def apply_payment_state(self, obj: object, state: dict) -> None:
            self.applied.append((str(obj), state["payment_status"]))

    adapter = OnlyApply()
    adapter.apply_payment_states([("a", {"payment_status": "open"}), ("b", {"payment_status": "overdue"})])
    assert adapter.applied == [("a", "open"), ("b", "overdue")]


def test_a_host_adapter_without_a_bulk_form_is_marked_sent_one_by_one() -> None:
    class OnlyMarkSent(InvoiceAdapterMixin):
        def __init__(self) -> None:
            self.sent: list[str] = []

        def mark_sent(self, obj: object) -> None:
            self.sent.append(str(obj))

    adapter = OnlyMarkSent()
    adapter.mark_sent_many(["a", "b", "c"])  # type: ignore[list-item]
    assert adapter.sent == ["a", "b", "c"]
