"""One QBO version in, the host row out (``qbo_sync.services.apply``), against the sandbox: idempotent, the payload
kept on the link, and a stale-object push that applies QuickBooks' version then sends what remains itself."""

from __future__ import annotations

import pytest
from django.utils import timezone

from batchly.models import Customer
from qbo_sync.adapters import get_adapter
from qbo_sync.models import Conflict, EntityMapping, QueueItem
from qbo_sync.services import queue
from qbo_sync.services.apply import Applied, apply_qbo_version
from qbo_sync.services.context import SyncContext
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)


def mapping_of(customer) -> EntityMapping:
    return EntityMapping.objects.get(entity_type="Customer", object_id=str(customer.pk))


def accountant_edits(accountant, qbo_id, **fields):
    current = accountant.read("Customer", qbo_id)
    payload = {"Id": qbo_id, "SyncToken": current["SyncToken"], "sparse": True, **fields}
    return accountant.update("Customer", payload, request_id=f"acct-{qbo_id}-{current['SyncToken']}", sparse=True)


def test_applying_the_same_version_twice_changes_nothing_and_the_payload_is_kept(org, accountant, run_queue) -> None:
    customer = CustomerFactory(organization=org)
    run_queue()
    qbo_id = mapping_of(customer).qbo_id
    assert mapping_of(customer).qbo_payload["Id"] == qbo_id  # the push's own answer is kept
    accountant_edits(accountant, qbo_id, CompanyName="Renamed Once")
    payload = accountant.read("Customer", qbo_id)
    adapter = get_adapter("Customer")
    ctx = SyncContext.for_organization(org.pk)
    try:
        first = apply_qbo_version(ctx, adapter, mapping_of(customer), Customer.objects.get(pk=customer.pk), payload)
        before = mapping_of(customer)
        second = apply_qbo_version(ctx, adapter, mapping_of(customer), Customer.objects.get(pk=customer.pk), payload)
    finally:
        ctx.client.close()
    assert first == Applied(to_host=("company_name",))
    assert second == Applied(skipped=True)
    after = mapping_of(customer)
    assert (after.sync_token, after.snapshot, after.qbo_payload, after.updated_at) == (
        before.sync_token, before.snapshot, before.qbo_payload, before.updated_at)
    assert after.qbo_payload == payload and after.sync_token == str(payload["SyncToken"])
    assert Customer.objects.get(pk=customer.pk).company_name == "Renamed Once"
    assert not Conflict.objects.exists()
    assert not QueueItem.objects.filter(status="pending").exists()  # apply queues nothing


def test_a_pull_keeps_the_last_quickbooks_version_on_the_link(org, accountant, run_queue) -> None:
    customer = CustomerFactory(organization=org)
    run_queue()
    accountant_edits(accountant, mapping_of(customer).qbo_id, CompanyName="Pulled Co")
    queue.start_pull(org.pk, "Customer")
    run_queue()
    mapping = mapping_of(customer)
    assert mapping.qbo_payload["CompanyName"] == "Pulled Co"
    assert mapping.qbo_payload["SyncToken"] == mapping.sync_token


def test_a_stale_push_applies_quickbooks_version_then_sends_what_remains(org, accountant, run_queue) -> None:
    """The accountant renamed the company while the host changed the phone: the push's update meets a stale
    SyncToken (5010), applies QuickBooks' current version (the company name reaches the host) and sends the phone
    itself, at once, through its normal path."""
    customer = CustomerFactory(organization=org)
    run_queue()
    qbo_id = mapping_of(customer).qbo_id
    accountant_edits(accountant, qbo_id, CompanyName="Renamed In QBO")
    Customer.objects.filter(pk=customer.pk).update(phone="(555) 101-0101", updated_at=timezone.now())
    queue.enqueue(org.pk, "Customer", [customer.pk], QueueItem.Operation.PUSH)
    run_queue()
    remote = accountant.read("Customer", qbo_id)
    assert remote["PrimaryPhone"]["FreeFormNumber"] == "(555) 101-0101"
    assert remote["CompanyName"] == "Renamed In QBO"
    assert Customer.objects.get(pk=customer.pk).company_name == "Renamed In QBO"
    mapping = mapping_of(customer)
    assert mapping.state == "synced" and mapping.sync_token == str(remote["SyncToken"])
    assert mapping.qbo_payload["SyncToken"] == remote["SyncToken"]
    assert set(QueueItem.objects.values_list("status", flat=True)) == {"completed"}  # nothing left for later
