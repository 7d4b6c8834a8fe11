"""Histories the model-based test (test_sync_model.py) shrank to, kept as ordinary example tests."""

from __future__ import annotations

from decimal import Decimal

import pytest

from batchly.models import Item
from qbo_sync.models import Conflict, EntityMapping
from qbo_sync.services.queue import start_pull
from tests.factories import ItemFactory, OrganizationFactory
from tests.model.test_sync_model import model_settings  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("made_in", ["host", "quickbooks"])
def test_a_host_edit_of_only_a_quickbooks_owned_field_is_put_back(org, accountant, run_queue, made_in) -> None:
    """Shrunk history: an item, its price edited in the host only, drain, pull. Nothing may be sent (QuickBooks
    owns the price) and QuickBooks did not change, so no pull ever merged it: the host kept a price QuickBooks
    does not have, silently."""
    if made_in == "host":
        item = ItemFactory(organization=org, name="Owned Price", unit_price=Decimal("7.50"))
        run_queue()
    else:
        accountant.create("Item", {"Name": "Owned Price", "Type": "Service", "UnitPrice": 7.5,
                                   "IncomeAccountRef": {"value": "1"}}, request_id="reg-owned-1")
        start_pull(org.pk, "Item")
        run_queue()
        item = Item.objects.get(organization=org, name="Owned Price")
    item.unit_price = Decimal("31.50")
    item.save()
    run_queue()
    start_pull(org.pk, "Item")
    run_queue()

    item.refresh_from_db()
    qbo_id = EntityMapping.objects.get(entity_type="Item", object_id=str(item.pk)).qbo_id
    assert Decimal(str(accountant.read("Item", qbo_id)["UnitPrice"])) == Decimal("7.5")
    assert item.unit_price == Decimal("7.50")
    conflict = Conflict.objects.get(field="unit_price")
    assert conflict.rule == "qbo_owns" and conflict.winner == "qbo" and conflict.state == "auto_resolved"


def test_resolving_a_conflict_of_a_former_company_reaches_the_company_connected_now(
        org, connection, accountant, run_queue, qbo_sandbox, settings) -> None:
    """Shrunk history: the critical email changed on both sides, a pull opens the conflict, the organization moves
    to another company ("sync all" there), then a person keeps QuickBooks' value. The host took it, but nothing was
    queued (the value was QuickBooks' already, in the former company): the company connected now kept the host's
    old email, with no conflict left."""
    from qbo_sync.services.conflicts import resolve_conflict
    from qbo_sync.services.jobs import start_sync
    from tests.factories import CustomerFactory
    from tests.integration.conftest import connect_org

    settings.QBO_SYNC = {**settings.QBO_SYNC, "CRITICAL_FIELDS": {"Customer": ["email"]}}
    customer = CustomerFactory(organization=org, display_name="Moving Customer", email="base@example.com")
    run_queue()
    qbo_id = EntityMapping.objects.get(entity_type="Customer", object_id=str(customer.pk)).qbo_id
    current = accountant.read("Customer", qbo_id)
    accountant.update("Customer", {"Id": qbo_id, "SyncToken": current["SyncToken"], "sparse": True,
                                   "PrimaryEmailAddr": {"Address": "qbo@example.com"}}, request_id="reg-move-1")
    customer.refresh_from_db()
    customer.email = "host@example.com"
    customer.save()
    start_pull(org.pk, "Customer")
    run_queue()
    conflict = Conflict.objects.get(field="email", state="open")

    other = qbo_sandbox.create_realm()
    connection.delete()
    connect_org(qbo_sandbox, other, org)
    start_sync(org.pk)
    run_queue()
    resolve_conflict(conflict, "qbo")
    run_queue()

    customer.refresh_from_db()
    assert customer.email == "qbo@example.com"
    moved = EntityMapping.objects.get(entity_type="Customer", object_id=str(customer.pk), realm_id=other)
    tokens = qbo_sandbox.issue_tokens(other)
    import requests
    remote = requests.get(f"{qbo_sandbox.base_url}/v3/company/{other}/customer/{moved.qbo_id}",
                          headers={"Authorization": f"Bearer {tokens['access_token']}",
                                   "Accept": "application/json"}, timeout=10).json()["Customer"]
    assert remote["PrimaryEmailAddr"]["Address"] == "qbo@example.com"


@pytest.mark.usefixtures("model_settings")
def test_a_refused_invoice_voided_before_its_push_is_retried(qbo_sandbox) -> None:
    """Found by the soak (seed 3809886570): an invoice for a customer made inactive is sent; a worker does the write
    (QuickBooks refuses it, code 610, the mapping keeps the reason) and dies before recording the outcome; the host
    voids the invoice; the retried push completes ("void before it was sent; nothing to send"). Nothing is lost: the
    model must not require a failed queue item for a refused invoice the host voided since."""
    from tests.integration.conftest import connect_org
    from tests.model.test_sync_model import SyncModel, bystander_state

    realm = qbo_sandbox.create_realm()
    connect_org(qbo_sandbox, realm, OrganizationFactory(name="Bystander"))
    SyncModel.sandbox = qbo_sandbox
    SyncModel.bystander = {"realm": realm, "state": bystander_state(qbo_sandbox, realm)}
    state = SyncModel()
    state.start_with_some_host_data(customers=1, items=1)
    state.host_sets_customer_active(i=0, active=False)
    state.worker_drains()
    state.host_creates_invoice(customer=0, lines=1, send=True)
    state.worker_dies_mid_chunk()
    state.host_voids_invoice(i=0)
    failed = EntityMapping.objects.get(organization_id=state.org.pk, entity_type="Invoice")
    assert failed.state == EntityMapping.State.FAILED and "code=610" in failed.last_error
    state.teardown()
