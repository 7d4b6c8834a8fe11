"""Customers sync both ways against the sandbox: push on save, pull, three-way merge, conflicts, linking."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from batchly.models import Customer
from qbo_sync.models import Conflict, EntityMapping, QueueItem
from qbo_sync.services.queue import start_pull
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)


def qbo_customer(accountant, mapping_or_id):
    qbo_id = mapping_or_id.qbo_id if isinstance(mapping_or_id, EntityMapping) else mapping_or_id
    return accountant.read("Customer", qbo_id)


def accountant_edits(accountant, qbo_id, **fields):
    current = accountant.read("Customer", qbo_id)
    payload = {"Id": qbo_id, "SyncToken": current["SyncToken"], "sparse": True, **fields}
    return accountant.update("Customer", payload, request_id=f"acct-{qbo_id}-{current['SyncToken']}", sparse=True)


def mapping_of(customer) -> EntityMapping:
    return EntityMapping.objects.get(entity_type="Customer", object_id=str(customer.pk))


def pull_customers(org, run_queue):
    start_pull(org.pk, "Customer")
    run_queue()


def test_a_new_customer_is_pushed_soon_after_the_save(org, accountant, run_queue) -> None:
    customer = CustomerFactory(organization=org, display_name="Amy's Bird Sanctuary", email="amy@example.com")
    assert QueueItem.objects.filter(object_id=str(customer.pk), status="pending").count() == 1

    run_queue()

    mapping = mapping_of(customer)
    assert mapping.state == "synced" and mapping.qbo_id
    remote = qbo_customer(accountant, mapping)
    assert remote["DisplayName"] == "Amy's Bird Sanctuary"
    assert remote["PrimaryEmailAddr"]["Address"] == "amy@example.com"
    assert remote["BillAddr"]["City"] == customer.bill_city
    assert accountant.count("Customer", "DisplayName = 'Amy\\'s Bird Sanctuary'") == 1


def test_a_change_in_batchly_is_pushed_as_a_sparse_update(org, accountant, run_queue) -> None:
    customer = CustomerFactory(organization=org)
    run_queue()
    customer.phone = "(555) 000-1111"
    customer.save()
    run_queue()
    remote = qbo_customer(accountant, mapping_of(customer))
    assert remote["PrimaryPhone"]["FreeFormNumber"] == "(555) 000-1111"
    assert remote["SyncToken"] == "1"


def test_an_accountants_change_is_pulled_and_never_echoes_back(org, accountant, run_queue) -> None:
    customer = CustomerFactory(organization=org)
    run_queue()
    mapping = mapping_of(customer)
    accountant_edits(accountant, mapping.qbo_id, CompanyName="Renamed by the accountant")

    pull_customers(org, run_queue)

    customer.refresh_from_db()
    assert customer.company_name == "Renamed by the accountant"
    run_queue()
    assert not QueueItem.objects.filter(status="pending").exists()
    # No echo: QBO's version is the accountant's, untouched by us.
    assert qbo_customer(accountant, mapping)["SyncToken"] == "1"
    assert not Conflict.objects.exists()


def test_a_pushed_change_does_not_come_back_as_a_qbo_change(org, accountant, run_queue) -> None:
    customer = CustomerFactory(organization=org)
    run_queue()
    pull_customers(org, run_queue)  # sets the cursor
    customer.email = "new@example.com"
    customer.save()
    run_queue()
    before = Customer.objects.get(pk=customer.pk).updated_at

    pull_customers(org, run_queue)

    assert Customer.objects.get(pk=customer.pk).updated_at == before  # not re-applied
    assert not Conflict.objects.exists()


def test_edits_of_different_fields_on_both_sides_merge(org, accountant, run_queue) -> None:
    customer = CustomerFactory(organization=org)
    run_queue()
    mapping = mapping_of(customer)
    accountant_edits(accountant, mapping.qbo_id, CompanyName="From QuickBooks")
    Customer.objects.filter(pk=customer.pk)  # the Batchly side edits another field
    customer.phone = "(555) 222-3333"
    with time_machine.travel(timezone.now(), tick=True):
        customer.save()

    pull_customers(org, run_queue)
    run_queue()

    customer.refresh_from_db()
    remote = qbo_customer(accountant, mapping)
    assert customer.company_name == remote["CompanyName"] == "From QuickBooks"
    assert customer.phone == remote["PrimaryPhone"]["FreeFormNumber"] == "(555) 222-3333"
    assert not Conflict.objects.exists()


def test_same_field_on_both_sides_newest_wins_and_is_recorded(org, accountant, run_queue) -> None:
    customer = CustomerFactory(organization=org)
    run_queue()
    mapping = mapping_of(customer)
    # Batchly edits first (ten minutes ago), then the accountant: QuickBooks is newer.
    with time_machine.travel(timezone.now() - dt.timedelta(minutes=10), tick=False):
        Customer.objects.filter(pk=customer.pk).update(company_name="Batchly name", updated_at=timezone.now())
    accountant_edits(accountant, mapping.qbo_id, CompanyName="QuickBooks name")

    pull_customers(org, run_queue)
    run_queue()

    customer.refresh_from_db()
    assert customer.company_name == "QuickBooks name"
    conflict = Conflict.objects.get(field="company_name")
    assert conflict.state == "auto_resolved" and conflict.winner == "qbo" and conflict.rule == "newest_wins"
    assert conflict.host_value == "Batchly name" and conflict.qbo_value == "QuickBooks name"
    assert conflict.base_value == f"{customer.display_name} Ltd"
    assert conflict.host_updated_at < conflict.qbo_updated_at


def test_same_field_batchly_newer_wins_and_is_pushed(org, accountant, run_queue) -> None:
    customer = CustomerFactory(organization=org)
    run_queue()
    mapping = mapping_of(customer)
    accountant_edits(accountant, mapping.qbo_id, CompanyName="QuickBooks name")
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=5), tick=False):
        Customer.objects.filter(pk=customer.pk).update(company_name="Batchly name", updated_at=timezone.now())

    pull_customers(org, run_queue)
    run_queue()

    assert qbo_customer(accountant, mapping)["CompanyName"] == "Batchly name"
    customer.refresh_from_db()
    assert customer.company_name == "Batchly name"
    conflict = Conflict.objects.get(field="company_name")
    assert conflict.winner == "host" and conflict.state == "auto_resolved"


def test_a_critical_field_conflict_waits_for_a_person(org, accountant, run_queue, settings) -> None:
    settings.QBO_SYNC = {**settings.QBO_SYNC, "CRITICAL_FIELDS": {"Customer": ["email"]}}
    customer = CustomerFactory(organization=org, email="base@example.com")
    run_queue()
    mapping = mapping_of(customer)
    Customer.objects.filter(pk=customer.pk).update(email="batchly@example.com", updated_at=timezone.now())
    accountant_edits(accountant, mapping.qbo_id, PrimaryEmailAddr={"Address": "qbo@example.com"})

    pull_customers(org, run_queue)
    run_queue()

    customer.refresh_from_db()
    assert customer.email == "batchly@example.com"
    assert qbo_customer(accountant, mapping)["PrimaryEmailAddr"]["Address"] == "qbo@example.com"
    conflict = Conflict.objects.get(field="email")
    assert conflict.state == "open" and conflict.winner == "" and conflict.rule == "critical_held"
    assert mapping_of(customer).state == "conflict"


def test_a_display_name_clash_links_to_the_same_customer(org, accountant, run_queue) -> None:
    existing = accountant.create("Customer", {"DisplayName": "Same Person", "PrimaryEmailAddr":
                                              {"Address": "same@example.com"}}, request_id="acct-create-1")
    customer = CustomerFactory(organization=org, display_name="Same Person", email="SAME@example.com")
    run_queue()
    assert mapping_of(customer).qbo_id == existing["Id"]
    assert accountant.count("Customer", "Active IN (true, false)") == 1


def test_a_display_name_clash_with_someone_else_fails_with_a_hint(org, accountant, run_queue) -> None:
    accountant.create("Customer", {"DisplayName": "Jo Smith", "PrimaryEmailAddr": {"Address": "jo@one.example"}},
                      request_id="acct-create-2")
    customer = CustomerFactory(organization=org, display_name="Jo Smith", email="jo@two.example",
                               given_name="Joanna", company_name="Two Co")
    run_queue()
    item = QueueItem.objects.get(object_id=str(customer.pk))
    assert item.status == "failed"
    assert "already has a different customer named 'Jo Smith'" in item.last_error
    assert "Rename it in Batchly" in item.last_error
    assert mapping_of(customer).state == "failed"


def test_a_lost_response_after_commit_leaves_exactly_one_customer(org, accountant, run_queue, qbo_sandbox,
                                                                   qbo_realm, qbo_fail_next) -> None:
    qbo_fail_next("lost_response", entity="Customer", operation="write")  # the create commits, its answer is lost
    customer = CustomerFactory(organization=org, display_name="Lost Answer Ltd")
    run_queue()
    assert qbo_sandbox.stats(qbo_realm)["scripted"] == {"lost_response": 1}
    assert mapping_of(customer).state == "synced"
    assert accountant.count("Customer", "DisplayName = 'Lost Answer Ltd' AND Active IN (true, false)") == 1


def test_a_push_is_recorded_as_a_push(org, run_queue) -> None:
    customer = CustomerFactory(organization=org)
    run_queue()
    mapping = mapping_of(customer)
    assert mapping.last_pushed_at is not None and mapping.state == "synced"
