"""Credit memos and refund receipts recorded by the accountant reach the host invoice: money paid, credit and
refunds apart, and a status that says which (pull only, against the sandbox)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from qbo_sync.models import EntityMapping, QueueItem
from qbo_sync.services.queue import create_job, start_pull
from tests.factories import InvoiceFactory

pytestmark = pytest.mark.django_db(transaction=True)


def qbo_id(entity, obj) -> str:
    return EntityMapping.objects.get(entity_type=entity, object_id=str(obj.pk)).qbo_id


def push(org, invoices, run_queue) -> None:
    create_job(org.pk, "push", "Invoice", [i.pk for i in invoices], QueueItem.Operation.PUSH)
    run_queue()


def pull_payments(org, run_queue, full=False) -> None:
    start_pull(org.pk, "Payment", full=full)
    run_queue()


def credit_memo(accountant, invoice, amount) -> dict:
    item = qbo_id("Item", invoice.lines.first().item)
    return accountant.create("CreditMemo", {
        "CustomerRef": {"value": qbo_id("Customer", invoice.customer)},
        "Line": [{"Amount": float(amount), "DetailType": "SalesItemLineDetail",
                  "SalesItemLineDetail": {"ItemRef": {"value": item}}}]}, request_id=f"cm-{invoice.pk}-{amount}")


def apply_credit(accountant, invoice, memo, amount) -> dict:
    """As QBO's UI does it: a zero payment linking the credit memo and the invoice."""
    links = [{"TxnId": memo["Id"], "TxnType": "CreditMemo"},
             {"TxnId": qbo_id("Invoice", invoice), "TxnType": "Invoice"}]
    return accountant.create("Payment", {
        "CustomerRef": {"value": qbo_id("Customer", invoice.customer)}, "TotalAmt": 0,
        "Line": [{"Amount": float(amount), "LinkedTxn": links}]}, request_id=f"apply-{memo['Id']}-{invoice.pk}")


def pay(accountant, invoice, amount) -> dict:
    return accountant.create("Payment", {
        "CustomerRef": {"value": qbo_id("Customer", invoice.customer)}, "TotalAmt": float(amount),
        "Line": [{"Amount": float(amount), "LinkedTxn": [{"TxnId": qbo_id("Invoice", invoice),
                                                          "TxnType": "Invoice"}]}]},
        request_id=f"pay-{invoice.pk}-{amount}")


def refund(accountant, invoice, amount, tag="") -> dict:
    item = qbo_id("Item", invoice.lines.first().item)
    return accountant.create("RefundReceipt", {
        "CustomerRef": {"value": qbo_id("Customer", invoice.customer)}, "DepositToAccountRef": {"value": "2"},
        "Line": [{"Amount": float(amount), "DetailType": "SalesItemLineDetail",
                  "SalesItemLineDetail": {"ItemRef": {"value": item}}}]}, request_id=f"rr-{invoice.pk}-{amount}{tag}")


def test_a_fully_credited_invoice_is_credited_not_paid_by_the_customer(org, accountant, run_queue) -> None:
    invoice = InvoiceFactory(organization=org)
    push(org, [invoice], run_queue)
    pull_payments(org, run_queue)  # sets the cursor: the next pull reads changes (CDC)
    memo = credit_memo(accountant, invoice, invoice.total)
    apply_credit(accountant, invoice, memo, invoice.total)

    pull_payments(org, run_queue)

    invoice.refresh_from_db()
    assert invoice.payment_status == "credited"
    assert invoice.amount_credited == invoice.total and invoice.amount_paid == Decimal("0.00")
    assert invoice.amount_due == Decimal("0.00") and invoice.amount_refunded == Decimal("0.00")


def test_money_credit_and_refunds_are_shown_apart(org, accountant, run_queue) -> None:
    invoice = InvoiceFactory(organization=org)  # 61.50
    push(org, [invoice], run_queue)
    pull_payments(org, run_queue)
    pay(accountant, invoice, Decimal("40.00"))
    memo = credit_memo(accountant, invoice, Decimal("21.50"))
    apply_credit(accountant, invoice, memo, Decimal("21.50"))
    pull_payments(org, run_queue)
    invoice.refresh_from_db()
    assert invoice.payment_status == "paid"
    assert (invoice.amount_paid, invoice.amount_credited, invoice.amount_due) == (
        Decimal("40.00"), Decimal("21.50"), Decimal("0.00"))

    refund(accountant, invoice, Decimal("15.00"))  # changes no invoice in QBO: seen through the refund's CDC entry
    pull_payments(org, run_queue)
    invoice.refresh_from_db()
    assert invoice.amount_refunded == Decimal("15.00") and invoice.payment_status == "paid"

    refund(accountant, invoice, Decimal("25.00"), tag="b")
    pull_payments(org, run_queue)
    invoice.refresh_from_db()
    assert invoice.amount_refunded == Decimal("40.00") and invoice.payment_status == "refunded"
    assert invoice.amount_paid == Decimal("40.00") and invoice.amount_credited == Decimal("21.50")


def test_a_first_full_pull_tells_credit_from_money_too(org, accountant, run_queue) -> None:
    credited, half, paid = (InvoiceFactory(organization=org) for _ in range(3))
    push(org, [credited, half, paid], run_queue)
    memo = credit_memo(accountant, credited, credited.total)
    apply_credit(accountant, credited, memo, credited.total)
    memo = credit_memo(accountant, half, Decimal("20.00"))
    apply_credit(accountant, half, memo, Decimal("20.00"))
    pay(accountant, paid, paid.total)

    pull_payments(org, run_queue, full=True)

    for row in (credited, half, paid):
        row.refresh_from_db()
    assert credited.payment_status == "credited" and credited.amount_credited == credited.total
    assert half.payment_status == "partial" and half.amount_credited == Decimal("20.00")
    assert half.amount_paid == Decimal("0.00") and half.amount_due == half.total - Decimal("20.00")
    assert paid.payment_status == "paid" and paid.amount_paid == paid.total and paid.amount_credited == 0


def test_a_refund_goes_to_the_customers_newest_paid_invoice_first(org, accountant, run_queue) -> None:
    older = InvoiceFactory(organization=org, issue_date=dt.date.today() - dt.timedelta(days=10))
    newer = InvoiceFactory(organization=org, customer=older.customer)
    push(org, [older, newer], run_queue)
    pull_payments(org, run_queue)
    pay(accountant, older, older.total)
    pay(accountant, newer, newer.total)
    pull_payments(org, run_queue)
    refund(accountant, newer, Decimal("70.00"))

    pull_payments(org, run_queue)

    older.refresh_from_db()
    newer.refresh_from_db()
    assert newer.amount_refunded == newer.total and newer.payment_status == "refunded"
    assert older.amount_refunded == Decimal("70.00") - newer.total and older.payment_status == "paid"


def test_a_refund_receipt_webhook_asks_for_a_payments_pull(client, sandbox_settings, connection) -> None:
    from qbo_sync.models import SyncJob
    from tests.integration.test_webhooks import TOKEN, legacy, post

    sandbox_settings.QBO_SYNC = {**sandbox_settings.QBO_SYNC, "WEBHOOK_VERIFIER_TOKEN": TOKEN}
    body = legacy(connection.realm_id, ("RefundReceipt", "7", "Create", "2026-11-23T10:00:00Z"),
                  ("CreditMemo", "8", "Create", "2026-11-23T10:00:00Z"))
    assert post(client, body).json() == {"stored": 2, "duplicates": 0, "ignored": 0}
    assert list(SyncJob.objects.values_list("entity_type", flat=True)) == ["Payment"]


def test_reconcile_counts_a_credited_invoice_as_settled_not_as_drift(org, accountant, run_queue) -> None:
    from qbo_sync.services.reconcile import reconcile

    invoice = InvoiceFactory(organization=org)
    push(org, [invoice], run_queue)
    pull_payments(org, run_queue)
    memo = credit_memo(accountant, invoice, invoice.total)
    apply_credit(accountant, invoice, memo, invoice.total)
    pull_payments(org, run_queue)
    invoice.refresh_from_db()
    assert invoice.payment_status == "credited"

    report = reconcile(org.pk)

    assert [d.kind for d in report.drift if d.object_id == str(invoice.pk)] == []
