"""Sales tax end to end against the sandbox (issue 15): taxability both ways, line tax codes, the manual-tax code
check before anything is sent, and what QuickBooks decided written back onto the host invoice."""

from __future__ import annotations

from decimal import Decimal

import pytest

from batchly.models import Invoice
from qbo_sync.models import Conflict, EntityMapping, QueueItem
from qbo_sync.services.queue import create_job, start_pull
from qbo_sync.services.reconcile import reconcile
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


def automated(qbo_sandbox, realm_id) -> None:
    """The company has automated sales tax on: its rate table is the sandbox's default (CA 8 %, AZ 7.1 % + 2 %)."""
    qbo_sandbox.configure(realm_id, tax_model="automated")


def pay(accountant, invoice, amount):
    body = {"TotalAmt": amount, "CustomerRef": {"value": qbo_id_of("Customer", invoice.customer)},
            "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": qbo_id_of("Invoice", invoice), "TxnType": "Invoice"}]}]}
    return accountant.create("Payment", body, request_id=f"pay-{invoice.pk}-{amount}")


def assert_books_match(org) -> None:
    report = reconcile(org.pk)
    assert report.books_match, report.lines()


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
    # The dry-run preview says the same before anything is queued (it asks QuickBooks nothing).
    from qbo_sync.services.jobs import preview_push

    [row] = preview_push(org.pk, "Invoice", [invoice.pk])
    assert row.action == "refused" and row.code == "invalid" and "tax_code" in row.reason
    assert "manual sales tax" in row.reason


# --- automated sales tax ----------------------------------------------------------------------------------------------


def test_automated_tax_on_mixed_lines_in_two_states_is_written_back(org, accountant, run_queue, qbo_sandbox,
                                                                    qbo_realm) -> None:
    automated(qbo_sandbox, qbo_realm)
    in_california = mixed_invoice(org, customer=CustomerFactory(organization=org, bill_region="CA"))
    in_tucson = mixed_invoice(org, customer=CustomerFactory(organization=org, bill_region="AZ"))
    assert in_california.total == in_california.subtotal == Decimal("140.00")  # a draft: QuickBooks decides tax
    push_invoices(org, [in_california, in_tucson], run_queue)

    for invoice, tax in ((in_california, Decimal("8.00")),  # 8 % of the taxable 100.00 only
                         (in_tucson, Decimal("9.10"))):  # 7.1 % + 2 % of 100.00, each rounded to cents
        invoice.refresh_from_db()
        remote = accountant.read("Invoice", qbo_id_of("Invoice", invoice))
        assert Decimal(str(remote["TxnTaxDetail"]["TotalTax"])) == tax
        assert invoice.status == Invoice.Status.SENT
        assert (invoice.subtotal, invoice.tax_amount, invoice.total) == (Decimal("140.00"), tax,
                                                                         Decimal("140.00") + tax)
        assert invoice.amount_due == invoice.total == Decimal(str(remote["Balance"]))
        assert invoice.payment_status == Invoice.PaymentStatus.OPEN
        mapping = EntityMapping.objects.get(entity_type="Invoice", object_id=str(invoice.pk))
        assert mapping.last_error == ""  # tax is not a total mismatch
    assert_books_match(org)


def test_a_tax_exempt_customer_is_charged_no_tax(org, accountant, run_queue, qbo_sandbox, qbo_realm) -> None:
    automated(qbo_sandbox, qbo_realm)
    invoice = mixed_invoice(org, customer=CustomerFactory(organization=org, taxable=False))
    push_invoices(org, [invoice], run_queue)
    invoice.refresh_from_db()
    assert (invoice.tax_amount, invoice.total, invoice.amount_due) == (Decimal("0.00"), Decimal("140.00"),
                                                                       Decimal("140.00"))
    assert_books_match(org)


def test_a_partial_payment_of_a_taxed_invoice_leaves_the_taxed_balance_due(org, accountant, run_queue, qbo_sandbox,
                                                                          qbo_realm) -> None:
    automated(qbo_sandbox, qbo_realm)
    invoice = mixed_invoice(org)
    push_invoices(org, [invoice], run_queue)
    start_pull(org.pk, "Payment")
    run_queue()
    pay(accountant, invoice, 140.0)  # the pre-tax amount: the tax is still owed
    start_pull(org.pk, "Payment")
    run_queue()
    invoice.refresh_from_db()
    assert invoice.total == Decimal("148.00")
    assert invoice.payment_status == Invoice.PaymentStatus.PARTIAL
    assert (invoice.amount_paid, invoice.amount_due) == (Decimal("140.00"), Decimal("8.00"))
    assert_books_match(org)

    pay(accountant, invoice, 8.0)
    start_pull(org.pk, "Payment")
    run_queue()
    invoice.refresh_from_db()
    assert invoice.payment_status == Invoice.PaymentStatus.PAID and invoice.amount_due == Decimal("0.00")
    assert_books_match(org)


def test_a_void_of_a_taxed_invoice_keeps_what_was_billed(org, accountant, run_queue, qbo_sandbox, qbo_realm) -> None:
    automated(qbo_sandbox, qbo_realm)
    invoice = mixed_invoice(org)
    push_invoices(org, [invoice], run_queue)
    invoice.refresh_from_db()
    invoice.void()
    run_queue()
    remote = accountant.read("Invoice", qbo_id_of("Invoice", invoice))
    assert Decimal(str(remote["TotalAmt"])) == 0 and Decimal(str(remote["TxnTaxDetail"]["TotalTax"])) == 0
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.VOID and invoice.amount_due == Decimal("0.00")
    assert (invoice.tax_amount, invoice.total) == (Decimal("8.00"), Decimal("148.00"))  # the void's record
    assert_books_match(org)


def test_a_tax_difference_is_its_own_drift_and_a_repull_settles_it(org, accountant, run_queue, qbo_sandbox,
                                                                   qbo_realm) -> None:
    automated(qbo_sandbox, qbo_realm)
    invoice = mixed_invoice(org)
    push_invoices(org, [invoice], run_queue)
    Invoice.objects.filter(pk=invoice.pk).update(tax_amount=Decimal("7.00"))  # e.g. a host that guessed the tax
    report = reconcile(org.pk)
    assert [d.kind for d in report.drift] == ["tax_differs"]
    assert "sales tax" in report.drift[0].message and "8.00" in report.drift[0].message
    reconcile(org.pk, repair=True)
    run_queue()
    invoice.refresh_from_db()
    assert invoice.tax_amount == Decimal("8.00")
    assert_books_match(org)


def test_the_tax_model_is_read_from_the_companys_preferences(org, accountant, run_queue, qbo_sandbox,
                                                            qbo_realm) -> None:
    """Nothing configured: a manual-tax company is recognised (TaxPrefs: using sales tax, not the automated engine),
    so an invoice with a taxable line and no tax code fails readably before anything is sent."""
    qbo_sandbox.configure(qbo_realm, tax_model="manual")
    invoice = mixed_invoice(org)
    item = push_invoices(org, [invoice], run_queue)[str(invoice.pk)]
    assert item.status == "failed" and "manual sales tax" in item.last_error
    assert accountant.count("Invoice") == 0

    qbo_sandbox.configure(qbo_realm, tax_model="none")  # the company stopped charging tax: nothing needed
    item = push_invoices(org, [invoice], run_queue)[str(invoice.pk)]
    assert item.status == "completed", item.last_error
    invoice.refresh_from_db()
    assert (invoice.tax_amount, invoice.total) == (Decimal("0.00"), Decimal("140.00"))


# --- manual sales tax, with a code ------------------------------------------------------------------------------------


def test_manual_tax_sends_the_configured_code(org, connection, accountant, run_queue, qbo_sandbox, qbo_realm,
                                              settings) -> None:
    qbo_sandbox.configure(qbo_realm, tax_model="manual")
    code = qbo_sandbox.tax_rates(qbo_realm)["AZ"]["TaxCode"]
    settings.QBO_SYNC = {**settings.QBO_SYNC, "TAX_CODE": code}  # the model is read from the company's Preferences
    invoice = mixed_invoice(org)  # a California customer: in a manual company the code decides, not the address
    item = push_invoices(org, [invoice], run_queue)[str(invoice.pk)]
    assert item.status == "completed", item.last_error
    remote = accountant.read("Invoice", qbo_id_of("Invoice", invoice))
    assert remote["TxnTaxDetail"]["TxnTaxCodeRef"]["value"] == code
    invoice.refresh_from_db()
    assert (invoice.tax_amount, invoice.total) == (Decimal("9.10"), Decimal("149.10"))
    assert_books_match(org)


# --- a host without tax fields ---------------------------------------------------------------------------------------

def _without_tax(values):
    values = {k: v for k, v in values.items() if k != "taxable"}
    if "lines" in values:
        values["lines"] = [{k: v for k, v in line.items() if k != "taxable"} for line in values["lines"]]
    return values


class _UntaxedNames:
    def to_values(self, obj):
        return _without_tax(super().to_values(obj))


class _UntaxedInvoices(_UntaxedNames):
    def apply_payment_state(self, obj, state):
        super().apply_payment_state(obj, {k: v for k, v in state.items() if k not in ("tax_amount", "total")})

    def apply_payment_states(self, pairs):  # the chunk form (a pushed chunk's answers) ignores them too
        super().apply_payment_states([(obj, {k: v for k, v in state.items() if k not in ("tax_amount", "total")})
                                      for obj, state in pairs])

    def payment_state(self, obj):
        return {"amount_due": obj.amount_due, "payment_status": obj.payment_status}


def test_a_host_without_tax_fields_keeps_working_in_a_taxed_company(org, accountant, run_queue, qbo_sandbox,
                                                                    qbo_realm, settings) -> None:
    """Every tax key is optional: a host that sends no taxability and keeps no tax amount still syncs, QuickBooks
    still taxes what its own item settings say, and reconciliation compares totals before tax and the taxed
    balance."""
    from batchly import qbo_adapters

    automated(qbo_sandbox, qbo_realm)
    settings.QBO_SYNC = {**settings.QBO_SYNC, "ENTITY_ADAPTERS": {
        "Customer": type("Customer", (_UntaxedNames, qbo_adapters.CustomerAdapter), {}),
        "Item": type("Item", (_UntaxedNames, qbo_adapters.ItemAdapter), {}),
        "Invoice": type("Invoice", (_UntaxedInvoices, qbo_adapters.InvoiceAdapter), {})}}
    invoice = mixed_invoice(org)
    taxed_item = invoice.lines.get(position=0).item
    run_queue()  # customers and items go first, without Taxable
    assert "Taxable" not in accountant.read("Item", qbo_id_of("Item", taxed_item))
    accountant_update(accountant, "Item", qbo_id_of("Item", taxed_item), Taxable=True)  # set up in QuickBooks
    item = push_invoices(org, [invoice], run_queue)[str(invoice.pk)]
    assert item.status == "completed", item.last_error
    remote = accountant.read("Invoice", qbo_id_of("Invoice", invoice))
    assert Decimal(str(remote["TotalAmt"])) == Decimal("148.00")  # QuickBooks taxed the line of its item
    invoice.refresh_from_db()
    assert invoice.amount_due == Decimal("148.00") and invoice.tax_amount == Decimal("0.00")
    assert EntityMapping.objects.get(entity_type="Invoice").last_error == ""
    assert_books_match(org)
