"""Sales tax end to end against the sandbox (issue 15): taxability both ways, line tax codes, the manual-tax code
check before anything is sent, and what QuickBooks decided written back onto the host invoice."""

from __future__ import annotations

from decimal import Decimal

import pytest

from batchly.models import Invoice
from qbo_sync.models import Conflict, EntityMapping, QueueItem
from qbo_sync.services.queue import create_job, start_pull
from tests.factories import CustomerFactory, InvoiceFactory, InvoiceLineFactory, ItemFactory

pytestmark = pytest.mark.django_db(transaction=True)


def qbo_id_of(entity, obj) -> str:
    return EntityMapping.objects.get(entity_type=entity, object_id=str(obj.pk)).qbo_id


def push_invoices(org, invoices, run_queue):
    job = create_job(org.pk, "push", "Invoice", [i.pk for i in invoices], QueueItem.Operation.PUSH)
    run_queue()
    return {item.object_id: item for item in QueueItem.objects.filter(job=job)}


def mixed_invoice(org, *, customer=None, taxable_price=Decimal("100.00"), other_price=Decimal("40.00")) -> Invoice:
    """One taxable line and one non-taxable line."""
    invoice = InvoiceFactory(organization=org, lines=0, **({"customer": customer} if customer else {}))
    InvoiceLineFactory(invoice=invoice, item=ItemFactory(organization=org, taxable=True), quantity=Decimal("1"),
                       unit_price=taxable_price, position=0)
    InvoiceLineFactory(invoice=invoice, item=ItemFactory(organization=org, taxable=False), quantity=Decimal("1"),
                       unit_price=other_price, position=1)
    invoice.recalculate()
    return invoice


def accountant_update(accountant, entity, qbo_id, **fields):
    current = accountant.read(entity, qbo_id)
    payload = {"Id": qbo_id, "SyncToken": current["SyncToken"], "sparse": True, **fields}
    return accountant.update(entity, payload, request_id=f"acct-{entity}-{qbo_id}-{current['SyncToken']}",
                             sparse=True)


# --- taxability, both ways -------------------------------------------------------------------------------------------


def test_lines_carry_the_items_taxability_and_an_exempt_customer_reaches_quickbooks(org, accountant,
                                                                                   run_queue) -> None:
    exempt = CustomerFactory(organization=org, taxable=False)
    invoice = mixed_invoice(org, customer=exempt)
    push_invoices(org, [invoice], run_queue)

    assert accountant.read("Customer", qbo_id_of("Customer", exempt))["Taxable"] is False
    remote = accountant.read("Invoice", qbo_id_of("Invoice", invoice))
    codes = [line["SalesItemLineDetail"]["TaxCodeRef"]["value"] for line in remote["Line"]
             if line.get("DetailType") == "SalesItemLineDetail"]
    assert codes == ["TAX", "NON"]
    items = {line.item.taxable: qbo_id_of("Item", line.item) for line in invoice.lines.all()}
    assert accountant.read("Item", items[True])["Taxable"] is True
    assert accountant.read("Item", items[False])["Taxable"] is False


def test_quickbooks_owns_the_tax_setup(org, accountant, run_queue) -> None:
    item = ItemFactory(organization=org, taxable=True)
    customer = CustomerFactory(organization=org, taxable=True)
    run_queue()
    accountant_update(accountant, "Item", qbo_id_of("Item", item), Taxable=False)
    accountant_update(accountant, "Customer", qbo_id_of("Customer", customer), Taxable=False)  # now exempt
    start_pull(org.pk, "Item")
    start_pull(org.pk, "Customer")
    run_queue()
    item.refresh_from_db()
    customer.refresh_from_db()
    assert item.taxable is False and customer.taxable is False

    # A host edit of the taxability is not sent; QuickBooks' value is put back and the overwrite recorded.
    for row in (item, customer):
        row.taxable = True
        row.save()
    run_queue()
    item.refresh_from_db()
    customer.refresh_from_db()
    assert item.taxable is False and customer.taxable is False
    assert accountant.read("Item", qbo_id_of("Item", item))["Taxable"] is False
    assert set(Conflict.objects.filter(field="taxable").values_list("rule", flat=True)) == {"qbo_owns"}


# --- manual sales tax ------------------------------------------------------------------------------------------------


def test_manual_tax_without_a_code_fails_before_anything_is_sent(org, connection, accountant, run_queue) -> None:
    connection.tax_model = "manual"
    connection.save(update_fields=["tax_model"])
    invoice = mixed_invoice(org)
    item = push_invoices(org, [invoice], run_queue)[str(invoice.pk)]
    assert item.status == "failed"
    assert f"Invoice {invoice.number} is not valid and was not sent" in item.last_error
    assert "manual sales tax" in item.last_error and "TAX_CODE" in item.last_error
    assert accountant.count("Invoice") == 0
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.DRAFT
