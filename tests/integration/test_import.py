"""Connecting to a company that already has data links records by natural key before creating anything."""

from __future__ import annotations

from decimal import Decimal

import pytest

from batchly.models import Customer
from qbo_sync.models import EntityMapping
from qbo_sync.services import jobs
from tests.factories import CustomerFactory, ItemFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_first_import_links_by_natural_key_and_duplicates_nothing(org, accountant, run_queue, qbo_sandbox,
                                                                   qbo_realm) -> None:
    # The accountant's company already has these.
    accountant.create("Customer", {"DisplayName": "Amy's Bird Sanctuary", "PrimaryEmailAddr":
                                   {"Address": "Birds@Intuit.com"}}, request_id="i-1")
    accountant.create("Customer", {"DisplayName": "Only In QuickBooks"}, request_id="i-2")
    income = accountant.query("SELECT * FROM Account WHERE AccountType = 'Income'").rows[0]["Id"]
    accountant.create("Item", {"Name": "Design", "Type": "Service", "UnitPrice": 75,
                               "IncomeAccountRef": {"value": income}}, request_id="i-3")
    # Batchly has some of the same records (created before the connection existed: nothing queued for them).
    from qbo_sync.models import QueueItem

    amy = CustomerFactory(organization=org, display_name="Amy's Bird Sanctuary", email="birds@intuit.com")
    design = ItemFactory(organization=org, name="Design", unit_price=Decimal("70.00"))
    only_batchly = CustomerFactory(organization=org, display_name="Only In Batchly")
    QueueItem.objects.all().delete()

    jobs.start_import(org.pk)
    run_queue()

    assert EntityMapping.objects.get(object_id=str(amy.pk), entity_type="Customer").qbo_id
    assert EntityMapping.objects.get(object_id=str(design.pk), entity_type="Item").qbo_id
    assert Customer.objects.filter(organization=org, display_name="Only In QuickBooks").exists()
    assert Customer.objects.filter(organization=org).count() == 3  # nothing duplicated on the Batchly side
    design.refresh_from_db()
    assert design.unit_price == Decimal("75.00")  # QuickBooks owns the price

    jobs.start_sync(org.pk)
    run_queue()
    assert accountant.count("Customer", "Active IN (true, false)") == 3  # only "Only In Batchly" was created
    assert accountant.count("Item", "Active IN (true, false)") == 1
    assert EntityMapping.objects.get(object_id=str(only_batchly.pk), entity_type="Customer").qbo_id
