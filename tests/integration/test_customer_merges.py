"""Customer merges done by the accountant in QuickBooks (sandbox: ``merge_customers``): the host's row is re-linked
to the survivor, or flagged for a person when the survivor is linked to another row; its invoices keep pointing at
a live QuickBooks customer, and nothing is ever written to the merged-away id. CDC and webhook paths."""

from __future__ import annotations

import json

import pytest

from batchly.models import Customer
from qbo_sync.models import EntityMapping, QueueItem, SyncLog, WebhookEvent
from qbo_sync.services.queue import create_job, start_pull
from tests.factories import CustomerFactory, InvoiceFactory
from tests.integration.test_webhooks import TOKEN, URL, post


@pytest.fixture
def webhook_settings(sandbox_settings):
    sandbox_settings.QBO_SYNC = {**sandbox_settings.QBO_SYNC, "WEBHOOK_VERIFIER_TOKEN": TOKEN}
    return sandbox_settings

pytestmark = pytest.mark.django_db(transaction=True)


def mapping_of(entity, obj) -> EntityMapping:
    return EntityMapping.objects.get(entity_type=entity, object_id=str(obj.pk))


def push_invoices(org, invoices, run_queue) -> None:
    create_job(org.pk, "push", "Invoice", [i.pk for i in invoices], QueueItem.Operation.PUSH)
    run_queue()


def pull_customers(org, run_queue) -> None:
    start_pull(org.pk, "Customer")
    run_queue()


def survivor_in_qbo(accountant, name="Survivor Co") -> dict:
    return accountant.create("Customer", {"DisplayName": name, "PrimaryEmailAddr": {"Address": "s@example.com"}},
                             request_id=f"cust-{name}")


def test_a_merged_customer_is_relinked_to_the_survivor_through_cdc(org, accountant, qbo_sandbox, qbo_realm,
                                                                    run_queue) -> None:
    invoice = InvoiceFactory(organization=org)
    push_invoices(org, [invoice], run_queue)
    pull_customers(org, run_queue)  # the cursor: the next pull reads CDC
    lost = mapping_of("Customer", invoice.customer).qbo_id
    survivor = survivor_in_qbo(accountant)
    qbo_sandbox.merge_customers(qbo_realm, lost, survivor["Id"])  # no webhook: only CDC tells

    pull_customers(org, run_queue)

    mapping = mapping_of("Customer", invoice.customer)
    assert mapping.qbo_id == survivor["Id"] and not mapping.merged_into and mapping.state == "synced"
    assert Customer.objects.filter(organization=org).count() == 1  # no new row for the survivor
    invoice.customer.refresh_from_db()
    assert invoice.customer.display_name == "Survivor Co"  # the survivor's version merged in
    assert accountant.read("Invoice", mapping_of("Invoice", invoice).qbo_id)["CustomerRef"]["value"] == survivor["Id"]
    assert SyncLog.objects.filter(event="merged_in_qbo", qbo_id=survivor["Id"]).exists()

    # Every later push goes to the survivor.
    invoice.customer.phone = "(555) 555-0199"
    invoice.customer.save()
    run_queue()
    assert accountant.read("Customer", survivor["Id"])["PrimaryPhone"]["FreeFormNumber"] == "(555) 555-0199"
    second = InvoiceFactory(organization=org, customer=invoice.customer)
    push_invoices(org, [second], run_queue)
    assert accountant.read("Invoice", mapping_of("Invoice", second).qbo_id)["CustomerRef"]["value"] == survivor["Id"]


def test_a_merge_webhook_relinks_even_a_customer_without_invoices(live_server, webhook_settings, connection,
                                                                  accountant, qbo_sandbox, qbo_realm,
                                                                  run_queue) -> None:
    org = connection.organization
    customer = CustomerFactory(organization=org)
    run_queue()  # pushed on save
    pull_customers(org, run_queue)
    lost = mapping_of("Customer", customer).qbo_id
    survivor = survivor_in_qbo(accountant)
    qbo_sandbox.configure(webhook_url=live_server.url + URL, verifier_token=TOKEN)
    try:
        qbo_sandbox.merge_customers(qbo_realm, lost, survivor["Id"])
        assert qbo_sandbox.wait_for_webhooks(timeout=10)
    finally:
        qbo_sandbox.configure(webhook_url=None, verifier_token=None)
    event = WebhookEvent.objects.get(operation="Merge")
    assert (event.qbo_id, event.deleted_id) == (survivor["Id"], lost)

    run_queue()  # the pull the webhook asked for

    assert mapping_of("Customer", customer).qbo_id == survivor["Id"]
    assert Customer.objects.filter(organization=org).count() == 1


def test_both_rows_linked_flags_the_merged_away_one_and_sends_nothing_for_it(org, accountant, qbo_sandbox,
                                                                              qbo_realm, run_queue) -> None:
    lost_row, kept_row = CustomerFactory(organization=org), CustomerFactory(organization=org)
    sent = InvoiceFactory(organization=org, customer=lost_row)
    push_invoices(org, [sent], run_queue)  # CDC alone tells the survivor by where this invoice went
    run_queue()
    pull_customers(org, run_queue)
    lost, kept = mapping_of("Customer", lost_row).qbo_id, mapping_of("Customer", kept_row).qbo_id
    invoice = InvoiceFactory(organization=org, customer=lost_row)
    qbo_sandbox.merge_customers(qbo_realm, lost, kept)

    pull_customers(org, run_queue)

    mapping = mapping_of("Customer", lost_row)
    assert mapping.merged_into == kept and mapping.state == "failed" and mapping.qbo_id == lost
    assert f"merged in QuickBooks into customer {kept}" in mapping.last_error
    assert "use the other row" in mapping.last_error
    assert mapping_of("Customer", kept_row).qbo_id == kept  # the other row keeps its link
    before = qbo_sandbox.stats(qbo_realm)["requests"].get("update", 0)

    lost_row.phone = "(555) 555-0142"
    lost_row.save()
    run_queue()
    item = QueueItem.objects.filter(entity_type="Customer", object_id=str(lost_row.pk)).latest("pk")
    assert item.status == "failed" and "was merged in QuickBooks" in item.last_error
    push_invoices(org, [invoice], run_queue)
    item = QueueItem.objects.filter(entity_type="Invoice", object_id=str(invoice.pk)).latest("pk")
    assert item.status == "failed" and "its customer needs a person first" in item.last_error
    assert qbo_sandbox.stats(qbo_realm)["requests"].get("update", 0) == before  # nothing was written
    assert accountant.count("Invoice") == 1  # only the one sent before the merge


def test_a_push_that_meets_the_merged_away_id_relinks_and_lands_on_the_survivor(org, accountant, qbo_sandbox,
                                                                                 qbo_realm, run_queue) -> None:
    invoice = InvoiceFactory(organization=org)
    push_invoices(org, [invoice], run_queue)
    lost = mapping_of("Customer", invoice.customer).qbo_id
    survivor = survivor_in_qbo(accountant)
    qbo_sandbox.merge_customers(qbo_realm, lost, survivor["Id"])  # no pull yet

    invoice.customer.phone = "(555) 555-0177"
    invoice.customer.save()
    run_queue()
    run_queue()

    assert mapping_of("Customer", invoice.customer).qbo_id == survivor["Id"]
    assert accountant.read("Customer", survivor["Id"])["PrimaryPhone"]["FreeFormNumber"] == "(555) 555-0177"


def test_a_cloudevents_merge_is_understood_too(client, webhook_settings, connection, accountant, qbo_sandbox,
                                               qbo_realm, run_queue) -> None:
    org = connection.organization
    customer = CustomerFactory(organization=org)
    run_queue()
    pull_customers(org, run_queue)
    lost = mapping_of("Customer", customer).qbo_id
    survivor = survivor_in_qbo(accountant)
    qbo_sandbox.merge_customers(qbo_realm, lost, survivor["Id"])
    body = json.dumps([{"specversion": "1.0", "id": "evt-merge-1", "source": "intuit.test",
                        "type": "qbo.customer.merged.v1", "datacontenttype": "application/json",
                        "time": "2026-11-23T10:00:00Z", "intuitentityid": survivor["Id"],
                        "intuitaccountid": qbo_realm, "data": {"deletedid": lost}}]).encode()

    assert post(client, body).status_code == 200
    run_queue()

    assert mapping_of("Customer", customer).qbo_id == survivor["Id"]
