"""Engine bugs the chaos suite found, each pinned by a regression test."""

from __future__ import annotations

from decimal import Decimal

import pytest

from qbo_sync.models import EntityMapping
from qbo_sync.services.queue import start_pull
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _qbo_id(obj, entity):
    return EntityMapping.objects.get(entity_type=entity, object_id=str(obj.pk)).qbo_id


def test_a_price_set_in_quickbooks_reaches_batchly_when_batchly_edits_the_item_meanwhile(org, accountant,
                                                                                         run_queue) -> None:
    item = ItemFactory(organization=org, unit_price=Decimal("50.00"), description="before")
    run_queue()
    qbo_id = _qbo_id(item, "Item")
    current = accountant.read("Item", qbo_id)
    accountant.update("Item", {"Id": qbo_id, "SyncToken": current["SyncToken"], "sparse": True, "UnitPrice": 97.25},
                      request_id="reg-price-1")
    item.refresh_from_db()
    item.description = "after"
    item.save()
    run_queue()
    start_pull(org.pk, "Item")
    run_queue()
    item.refresh_from_db()
    remote = accountant.read("Item", qbo_id)
    assert remote["Description"] == "after"
    assert item.unit_price == Decimal("97.25")
