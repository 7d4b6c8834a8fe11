"""Invoice numbers as QuickBooks rules them (issue 15): a company with "custom transaction numbers" on refuses a
duplicate DocNumber (fault 6140), so the push fails with QuickBooks' reason and nothing is written twice; with the
preference off QuickBooks numbers its invoices itself, and the push still links the one it made."""

from __future__ import annotations

import pytest

from qbo_sync.models import EntityMapping, QueueItem
from qbo_sync.services.queue import create_job
from tests.factories import InvoiceFactory

pytestmark = pytest.mark.django_db(transaction=True)


def push(org, invoice, run_queue) -> QueueItem:
    job = create_job(org.pk, "push", "Invoice", [invoice.pk], QueueItem.Operation.PUSH)
    run_queue()
    return QueueItem.objects.get(job=job)


def invoices_numbered(accountant, number: str) -> list[dict]:
    return [r for r in accountant.query_all("SELECT * FROM Invoice") if r.get("DocNumber") == number]


def qbo_id_of(entity, obj) -> str:
    return EntityMapping.objects.get(entity_type=entity, object_id=str(obj.pk)).qbo_id


def test_a_duplicate_number_is_refused_with_quickbooks_reason_and_never_sent_twice(org, accountant, run_queue,
                                                                                    qbo_sandbox, qbo_realm) -> None:
    qbo_sandbox.configure(qbo_realm, custom_txn_numbers="on")
    first = InvoiceFactory(organization=org)
    assert push(org, first, run_queue).status == QueueItem.Status.COMPLETED
    # The accountant already used the number of the host's next invoice for one typed in QuickBooks.
    twin = InvoiceFactory(organization=org, customer=first.customer)
    line = first.lines.first()
    accountant.create("Invoice", {
        "DocNumber": twin.number, "CustomerRef": {"value": qbo_id_of("Customer", first.customer)},
        "Line": [{"Amount": 10.0, "DetailType": "SalesItemLineDetail",
                  "SalesItemLineDetail": {"ItemRef": {"value": qbo_id_of("Item", line.item)}, "Qty": 1,
                                          "UnitPrice": 10.0}}]}, request_id=f"acct-{twin.number}")
    item = push(org, twin, run_queue)

    assert item.status == QueueItem.Status.FAILED and item.error_code == "6140"  # not retried: a person renumbers
    assert "Duplicate Document Number" in item.last_error and twin.number in item.last_error
    assert len(invoices_numbered(accountant, twin.number)) == 1  # the accountant's, once; ours never went
    assert not EntityMapping.objects.filter(entity_type="Invoice", object_id=str(twin.pk)).exclude(
        qbo_id__isnull=True).exclude(qbo_id="").exists()


def test_with_the_preference_off_quickbooks_numbers_the_invoice_and_it_is_linked_once(org, accountant, run_queue,
                                                                                      qbo_sandbox, qbo_realm) -> None:
    qbo_sandbox.configure(qbo_realm, custom_txn_numbers="off")
    invoice = InvoiceFactory(organization=org)
    assert push(org, invoice, run_queue).status == QueueItem.Status.COMPLETED
    again = push(org, invoice, run_queue)  # a second push of the same invoice writes nothing new
    assert again.status == QueueItem.Status.COMPLETED
    mapping = EntityMapping.objects.get(entity_type="Invoice", object_id=str(invoice.pk))
    remote = accountant.read("Invoice", mapping.qbo_id)
    assert remote["DocNumber"]  # QuickBooks' own number
    assert len(list(accountant.query_all("SELECT * FROM Invoice"))) == 1
