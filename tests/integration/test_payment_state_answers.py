"""Payment state comes from every QBO answer that carries it, the push's own answer included (issue 11, defect 2).

A host whose new invoices start at amount due 0 (it leaves the balance to QuickBooks) used to keep 0.00 forever
when nothing was paid: the push's answer (Balance = TotalAmt) was never applied and every later pull skipped that
version as already known.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from batchly.models import Invoice
from qbo_sync.models import EntityMapping, QueueItem
from qbo_sync.services.queue import create_job, start_pull
from tests.factories import InvoiceFactory

pytestmark = pytest.mark.django_db(transaction=True)


def unbalanced_invoice(org, **kwargs) -> Invoice:
    """An invoice as a host that leaves the balance to QuickBooks creates it: nothing due yet."""
    invoice = InvoiceFactory(organization=org, **kwargs)
    Invoice.objects.filter(pk=invoice.pk).update(amount_due=Decimal("0.00"), amount_paid=Decimal("0.00"))
    invoice.refresh_from_db()
    assert invoice.amount_due == 0 and invoice.total > 0
    return invoice


def push(org, invoices, run_queue) -> None:
    create_job(org.pk, "push", "Invoice", [i.pk for i in invoices], QueueItem.Operation.PUSH)
    run_queue()


def test_the_push_answer_gives_the_host_its_balance(org, accountant, run_queue) -> None:
    invoice = unbalanced_invoice(org)
    push(org, [invoice], run_queue)
    invoice.refresh_from_db()
    remote = accountant.read("Invoice", EntityMapping.objects.get(entity_type="Invoice").qbo_id)
    assert Decimal(str(remote["Balance"])) == invoice.total
    assert invoice.amount_due == invoice.total and invoice.amount_paid == Decimal("0.00")
    assert invoice.payment_status == Invoice.PaymentStatus.OPEN

    start_pull(org.pk, "Payment")  # a pull sees the same version: the host keeps the balance
    run_queue()
    invoice.refresh_from_db()
    assert invoice.amount_due == invoice.total


def test_a_past_due_invoice_is_overdue_as_soon_as_it_is_pushed(org, accountant, run_queue) -> None:
    today = timezone.localdate()
    invoice = unbalanced_invoice(org, issue_date=today - dt.timedelta(days=40), due_date=today - dt.timedelta(days=10))
    push(org, [invoice], run_queue)
    invoice.refresh_from_db()
    assert invoice.payment_status == Invoice.PaymentStatus.OVERDUE and invoice.amount_due == invoice.total


def test_a_create_found_again_after_a_lost_answer_gives_its_balance_too(org, accountant, run_queue) -> None:
    invoice = unbalanced_invoice(org)
    push(org, [invoice], run_queue)
    # As if the answer had been lost: the host has no balance and the link has no QBO id, but QBO has the invoice.
    mapping = EntityMapping.objects.get(entity_type="Invoice")
    EntityMapping.objects.filter(pk=mapping.pk).update(qbo_id=None, sync_token="")
    Invoice.objects.filter(pk=invoice.pk).update(amount_due=Decimal("0.00"), status=Invoice.Status.DRAFT)
    push(org, [invoice], run_queue)
    invoice.refresh_from_db()
    assert accountant.count("Invoice") == 1
    assert invoice.amount_due == invoice.total and invoice.status == Invoice.Status.SENT


def test_a_known_version_is_applied_again_by_a_full_payment_pull(org, accountant, run_queue) -> None:
    invoice = InvoiceFactory(organization=org)
    push(org, [invoice], run_queue)
    Invoice.objects.filter(pk=invoice.pk).update(amount_due=Decimal("0.00"))  # the host lost it somehow
    job = start_pull(org.pk, "Payment", full=True)
    run_queue()
    job.refresh_from_db()
    invoice.refresh_from_db()
    assert job.state == "completed" and invoice.amount_due == invoice.total
