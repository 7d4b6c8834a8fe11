"""Reconciliation against the sandbox: "books match" after a clean run, each kind of drift found with its repair,
and the repairs (plus a drain) bring the books back to matching."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core.management import call_command

from batchly.models import Customer, Invoice
from qbo_sync.models import EntityMapping, QueueItem
from qbo_sync.services.queue import create_job, start_pull
from qbo_sync.services.reconcile import reconcile
from tests.factories import CustomerFactory, InvoiceFactory, InvoiceLineFactory, ItemFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _books(org, n_invoices=6):
    customers = [CustomerFactory(organization=org) for _ in range(3)]
    items = [ItemFactory(organization=org, unit_price=Decimal("10.50")) for _ in range(2)]
    invoices = []
    for n in range(n_invoices):
        inv = InvoiceFactory(organization=org, customer=customers[n % 3], number=f"REC-{n:03d}")
        InvoiceLineFactory(invoice=inv, item=items[n % 2], quantity=Decimal(n + 1), unit_price=Decimal("10.50"))
        inv.recalculate()
        invoices.append(inv)
    return customers, items, invoices


def _sync_all(org, run_queue):
    create_job(org.pk, "push", "Invoice", [i.pk for i in Invoice.objects.filter(organization=org)], "push")
    run_queue()
    for entity in ("Customer", "Item", "Payment"):
        start_pull(org.pk, entity)
        run_queue()


def _qbo_id(obj, entity="Invoice"):
    return EntityMapping.objects.get(entity_type=entity, object_id=str(obj.pk)).qbo_id


def test_books_match_after_a_clean_run_and_drift_is_found_and_repaired(org, accountant, run_queue, capsys):
    customers, _items, invoices = _books(org)
    _sync_all(org, run_queue)
    report = reconcile(org.pk)
    assert report.books_match, report.lines()
    assert report.counts["Invoice"]["linked"] == 6 and report.counts["Customer"]["linked"] == 3
    assert report.totals["Invoice"]["host_total"] == report.totals["Invoice"]["qbo_total"] > 0

    # 1. the accountant records a payment; Batchly has not pulled it yet
    paid = accountant.read("Invoice", _qbo_id(invoices[0]))
    accountant.create("Payment", {"CustomerRef": paid["CustomerRef"], "TotalAmt": paid["TotalAmt"],
                                  "Line": [{"Amount": paid["TotalAmt"], "LinkedTxn": [
                                      {"TxnId": paid["Id"], "TxnType": "Invoice"}]}]}, request_id="rec-pay-1")
    # 2. a second copy of an invoice appears in QuickBooks (same DocNumber)
    original = accountant.read("Invoice", _qbo_id(invoices[1]))
    copy = {k: original[k] for k in ("CustomerRef", "DocNumber")}
    copy["Line"] = [line for line in original["Line"] if line.get("DetailType") == "SalesItemLineDetail"]
    for line in copy["Line"]:
        line.pop("Id", None)
    dup = accountant.create("Invoice", copy, request_id="rec-dup-1")
    # 3. an invoice's link is lost (as if the answer of its create never came back)
    lost_link = _qbo_id(invoices[2])
    EntityMapping.objects.filter(entity_type="Invoice", object_id=str(invoices[2].pk)).update(qbo_id=None)
    # 4. the accountant renames a customer's company; no pull yet
    cust_qbo = _qbo_id(customers[0], "Customer")
    current = accountant.read("Customer", cust_qbo)
    accountant.update("Customer", {"Id": cust_qbo, "SyncToken": current["SyncToken"], "sparse": True,
                                   "CompanyName": "Renamed In QBO"}, request_id="rec-cust-1")
    # 5. a customer never reached QuickBooks and nothing is queued for it
    lonely = CustomerFactory(organization=org)
    QueueItem.objects.filter(entity_type="Customer", object_id=str(lonely.pk)).delete()

    report = reconcile(org.pk)
    kinds = {(d.kind, d.repair) for d in report.drift}
    assert kinds == {("payment_differs", "repull"), ("duplicate_in_qbo", "void_duplicate"), ("unlinked", "relink"),
                     ("fields_differ", "repull"), ("not_in_qbo", "requeue_push")}, report.lines()

    call_command("qbo_sync", "reconcile", "--org", org.slug)
    out = capsys.readouterr().out
    assert "5 drift line(s)" in out and "duplicate_in_qbo" in out and "repair: relink" in out

    call_command("qbo_sync", "reconcile", "--org", org.slug, "--repair", "--json")
    data = json.loads(capsys.readouterr().out)
    assert data[0]["books_match"] is False and data[0]["repaired"]
    run_queue()
    report = reconcile(org.pk)
    assert report.books_match, report.lines()
    assert accountant.read("Invoice", dup["Id"])["TotalAmt"] == 0  # the extra copy was voided
    assert Invoice.objects.get(pk=invoices[0].pk).payment_status == "paid"
    assert Customer.objects.get(pk=customers[0].pk).company_name == "Renamed In QBO"
    assert _qbo_id(invoices[2]) == lost_link  # relinked to the invoice QuickBooks had, not a second one
    assert EntityMapping.objects.get(entity_type="Customer", object_id=str(lonely.pk)).qbo_id
    call_command("qbo_sync", "reconcile", "--org", org.slug)
    assert "books match" in capsys.readouterr().out


def test_reconcile_command_errors_are_one_line(db, capsys):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No organization"):
        call_command("qbo_sync", "reconcile", "--org", "nope")


class _RenamedPaymentColumnsAdapter:
    """Batchly's invoice adapter, as a host whose payment columns have other names would write it: the row's
    payment state is read through ``payment_state`` (here: always 'open', the full total due)."""

    def payment_state(self, obj):
        return {"amount_due": obj.total, "payment_status": "open"}


def test_reconcile_reads_the_hosts_payment_state_through_the_adapter(org, accountant, run_queue, settings):
    """Found by the second host (examples/shop: ``balance``/``payment_state`` columns): reconcile read
    ``amount_due``/``payment_status`` off the row by name, so a host naming them otherwise never had its payments
    checked ("books match" with a paid invoice shown open)."""
    from batchly.qbo_adapters import InvoiceAdapter

    _customers, _items, invoices = _books(org, n_invoices=2)
    _sync_all(org, run_queue)
    paid = accountant.read("Invoice", _qbo_id(invoices[0]))
    accountant.create("Payment", {"CustomerRef": paid["CustomerRef"], "TotalAmt": paid["TotalAmt"],
                                  "Line": [{"Amount": paid["TotalAmt"], "LinkedTxn": [
                                      {"TxnId": paid["Id"], "TxnType": "Invoice"}]}]}, request_id="rec-pay-ad")
    start_pull(org.pk, "Payment")
    run_queue()
    assert reconcile(org.pk).books_match

    adapter = type("Renamed", (_RenamedPaymentColumnsAdapter, InvoiceAdapter), {})
    settings.QBO_SYNC = {**settings.QBO_SYNC,
                         "ENTITY_ADAPTERS": {**settings.QBO_SYNC["ENTITY_ADAPTERS"], "Invoice": adapter}}
    report = reconcile(org.pk)
    assert [(d.kind, d.object_id) for d in report.drift] == [("payment_differs", str(invoices[0].pk))]
    assert report.totals["Invoice"]["host_due"] == sum(i.total for i in invoices)
