"""Items (QBO primary), invoices (push only, immutable, void), payments (pull only) against the sandbox."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from batchly.models import Invoice, Item, SalesOrder
from qbo_sync.models import Conflict, EntityMapping, QueueItem
from qbo_sync.services.queue import create_job, enqueue, start_pull
from tests.factories import CustomerFactory, InvoiceFactory, ItemFactory, SalesOrderFactory, SalesOrderLineFactory

pytestmark = pytest.mark.django_db(transaction=True)


def mapping_of(entity, obj) -> EntityMapping:
    return EntityMapping.objects.get(entity_type=entity, object_id=str(obj.pk))


def accountant_update(accountant, entity, qbo_id, **fields):
    current = accountant.read(entity, qbo_id)
    payload = {"Id": qbo_id, "SyncToken": current["SyncToken"], "sparse": True, **fields}
    return accountant.update(entity, payload, request_id=f"acct-{entity}-{qbo_id}-{current['SyncToken']}",
                             sparse=True)


def push_invoices(org, invoices, run_queue):
    job = create_job(org.pk, "push", "Invoice", [i.pk for i in invoices], QueueItem.Operation.PUSH)
    run_queue()
    job.refresh_from_db()
    return job


# --- items ----------------------------------------------------------------------------------------------------------


def test_an_item_created_in_batchly_is_pushed_with_the_income_account(org, accountant, run_queue) -> None:
    item = ItemFactory(organization=org, name="Widget", unit_price=Decimal("19.99"))
    run_queue()
    remote = accountant.read("Item", mapping_of("Item", item).qbo_id)
    assert remote["Name"] == "Widget" and Decimal(str(remote["UnitPrice"])) == Decimal("19.99")
    assert remote["IncomeAccountRef"]["value"]


def test_quickbooks_always_wins_the_price_and_the_overwrite_is_recorded(org, accountant, run_queue) -> None:
    item = ItemFactory(organization=org, unit_price=Decimal("10.00"))
    run_queue()
    qbo_id = mapping_of("Item", item).qbo_id
    item.unit_price = Decimal("12.00")  # a Batchly edit of the price is not pushed
    item.save()
    run_queue()
    assert Decimal(str(accountant.read("Item", qbo_id)["UnitPrice"])) == Decimal("10.00")
    accountant_update(accountant, "Item", qbo_id, UnitPrice=11.5)

    start_pull(org.pk, "Item")
    run_queue()

    item.refresh_from_db()
    assert item.unit_price == Decimal("11.50")
    conflict = Conflict.objects.get(field="unit_price")
    assert conflict.rule == "qbo_owns" and conflict.winner == "qbo" and conflict.state == "auto_resolved"


def test_a_price_edited_only_in_batchly_is_put_back_on_the_next_pull(org, accountant, run_queue) -> None:
    item = ItemFactory(organization=org, unit_price=Decimal("10.00"))
    run_queue()
    Item.objects.filter(pk=item.pk).update(unit_price=Decimal("99.00"), active=False, updated_at=timezone.now())
    accountant_update(accountant, "Item", mapping_of("Item", item).qbo_id, Description="touched")
    start_pull(org.pk, "Item")
    run_queue()
    item.refresh_from_db()
    assert item.unit_price == Decimal("10.00") and item.active is True
    assert set(Conflict.objects.values_list("field", flat=True)) == {"unit_price", "active"}


def test_batchly_owns_the_description_when_it_changed_it(org, accountant, run_queue) -> None:
    item = ItemFactory(organization=org, description="original")
    run_queue()
    qbo_id = mapping_of("Item", item).qbo_id
    accountant_update(accountant, "Item", qbo_id, Description="accountant text")
    Item.objects.filter(pk=item.pk).update(description="batchly text", updated_at=timezone.now()
                                           - dt.timedelta(hours=1))
    start_pull(org.pk, "Item")
    run_queue()
    item.refresh_from_db()
    assert item.description == "batchly text"
    assert accountant.read("Item", qbo_id)["Description"] == "batchly text"
    assert Conflict.objects.get(field="description").rule == "host_owns"


# --- invoices -------------------------------------------------------------------------------------------------------


def test_an_invoice_is_pushed_with_its_dependencies_first(org, accountant, run_queue) -> None:
    invoice = InvoiceFactory(organization=org)  # its customer and items are not in QuickBooks yet
    QueueItem.objects.all().delete()  # the saves queued their own pushes; the invoice must not need them
    job = push_invoices(org, [invoice], run_queue)
    assert job.state == "completed"
    mapping = mapping_of("Invoice", invoice)
    remote = accountant.read("Invoice", mapping.qbo_id)
    assert remote["DocNumber"] == invoice.number
    assert Decimal(str(remote["TotalAmt"])) == invoice.total
    assert remote["CustomerRef"]["value"] == mapping_of("Customer", invoice.customer).qbo_id
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.SENT and invoice.sent_at is not None


def test_an_invalid_invoice_gets_a_readable_error_and_nothing_is_sent(org, accountant, run_queue) -> None:
    invoice = InvoiceFactory(organization=org, lines=0)
    job = push_invoices(org, [invoice], run_queue)
    item = QueueItem.objects.get(job=job)
    assert item.status == "failed"
    assert f"Invoice {invoice.number} is not valid and was not sent" in item.last_error
    assert "line" in item.last_error
    assert accountant.count("Invoice") == 0
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.DRAFT


def test_an_invoice_is_never_sent_twice(org, accountant, run_queue) -> None:
    invoice = InvoiceFactory(organization=org)
    push_invoices(org, [invoice], run_queue)
    push_invoices(org, [invoice], run_queue)
    enqueue(org.pk, "Invoice", [invoice.pk], QueueItem.Operation.PUSH)
    run_queue()
    assert accountant.count("Invoice", f"DocNumber = '{invoice.number}'") == 1


def test_many_invoices_go_in_batches_and_each_lands_once(org, accountant, run_queue, qbo_sandbox, qbo_realm) -> None:
    customer = CustomerFactory(organization=org)
    invoices = [InvoiceFactory(organization=org, customer=customer, lines=1) for _ in range(45)]
    job = push_invoices(org, invoices, run_queue)
    assert job.state == "completed"
    assert accountant.count("Invoice") == 45
    stats = qbo_sandbox.stats(qbo_realm)
    assert stats["requests"].get("batch", 0) >= 2


def test_a_void_in_batchly_is_pushed_and_a_correction_is_a_new_invoice(org, accountant, run_queue) -> None:
    invoice = InvoiceFactory(organization=org)
    push_invoices(org, [invoice], run_queue)
    invoice.refresh_from_db()
    qbo_id = mapping_of("Invoice", invoice).qbo_id

    replacement = invoice.correct()  # void + new draft linked to it
    run_queue()
    push_invoices(org, [replacement], run_queue)

    voided = accountant.read("Invoice", qbo_id)
    assert Decimal(str(voided["TotalAmt"])) == 0 and voided["PrivateNote"].startswith("Voided")
    new = accountant.read("Invoice", mapping_of("Invoice", replacement).qbo_id)
    assert new["DocNumber"] == replacement.number and Decimal(str(new["TotalAmt"])) == replacement.total


def test_sales_orders_never_reach_quickbooks_only_their_invoices(org, accountant, run_queue) -> None:
    order = SalesOrderFactory(organization=org, status=SalesOrder.Status.APPROVED)
    SalesOrderLineFactory(order=order)
    run_queue()
    assert accountant.count("Invoice") == 0
    invoice = order.convert_to_invoice()
    push_invoices(org, [invoice], run_queue)
    assert accountant.count("Invoice") == 1
    assert not QueueItem.objects.filter(entity_type="SalesOrder").exists()


def test_an_invoice_is_never_pulled(org, accountant, run_queue) -> None:
    invoice = InvoiceFactory(organization=org)
    push_invoices(org, [invoice], run_queue)
    accountant_update(accountant, "Invoice", mapping_of("Invoice", invoice).qbo_id, PrivateNote="edited in QBO")
    start_pull(org.pk, "Payment")
    run_queue()
    invoice.refresh_from_db()
    assert invoice.memo == ""


# --- payments -------------------------------------------------------------------------------------------------------


def pay(accountant, invoice_qbo_id, customer_qbo_id, amount, txn_date=None):
    body = {"TotalAmt": amount, "CustomerRef": {"value": customer_qbo_id},
            "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": invoice_qbo_id, "TxnType": "Invoice"}]}]}
    if txn_date:
        body["TxnDate"] = txn_date
    return accountant.create("Payment", body, request_id=f"pay-{invoice_qbo_id}-{amount}-{txn_date}")


def test_partial_and_full_payments_come_back_onto_the_invoice(org, accountant, run_queue) -> None:
    partial, full, unpaid = (InvoiceFactory(organization=org) for _ in range(3))
    push_invoices(org, [partial, full, unpaid], run_queue)
    start_pull(org.pk, "Payment")
    run_queue()  # first payments pull: sets the cursor
    cust = mapping_of("Customer", partial.customer).qbo_id
    p1 = pay(accountant, mapping_of("Invoice", partial).qbo_id, cust, 20.0, "2026-11-20")
    cust_full = mapping_of("Customer", full.customer).qbo_id
    p2 = pay(accountant, mapping_of("Invoice", full).qbo_id, cust_full, float(full.total), "2026-11-21")

    start_pull(org.pk, "Payment")
    run_queue()

    partial.refresh_from_db()
    full.refresh_from_db()
    unpaid.refresh_from_db()
    assert partial.payment_status == "partial"
    assert partial.amount_paid == Decimal("20.00") and partial.amount_due == partial.total - Decimal("20.00")
    assert partial.last_payment_id == p1["Id"] and partial.last_payment_date == dt.date(2026, 11, 20)
    assert full.payment_status == "paid" and full.amount_due == Decimal("0.00") and full.last_payment_id == p2["Id"]
    assert unpaid.payment_status == "open" and unpaid.amount_due == unpaid.total


def test_a_past_due_unpaid_invoice_is_overdue(org, accountant, run_queue) -> None:
    today = timezone.localdate()
    invoice = InvoiceFactory(organization=org, issue_date=today - dt.timedelta(days=40),
                             due_date=today - dt.timedelta(days=10))
    push_invoices(org, [invoice], run_queue)
    start_pull(org.pk, "Payment")
    run_queue()
    invoice.refresh_from_db()
    assert invoice.payment_status == "overdue" and invoice.amount_due == invoice.total


def test_a_price_edited_in_batchly_is_put_back_right_after_a_push(org, accountant, run_queue) -> None:
    """A push's answer shows QBO's price: the host gets it at once (a later pull would skip this version)."""
    item = ItemFactory(organization=org, unit_price=Decimal("10.00"), description="one")
    run_queue()
    item.unit_price = Decimal("55.00")
    item.description = "two"
    item.save()
    run_queue()  # pushes the description only; QuickBooks keeps its price
    item.refresh_from_db()
    assert item.unit_price == Decimal("10.00") and item.description == "two"
    assert Conflict.objects.get(field="unit_price").rule == "qbo_owns"
    start_pull(org.pk, "Item")
    run_queue()
    item.refresh_from_db()
    assert item.unit_price == Decimal("10.00")
