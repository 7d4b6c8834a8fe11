"""Histories the model-based test (test_sync_model.py) shrank to, kept as ordinary example tests."""

from __future__ import annotations

from decimal import Decimal

import pytest

from batchly.models import Item
from qbo_sync.models import Conflict, EntityMapping
from qbo_sync.services.queue import start_pull
from tests.factories import ItemFactory

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
