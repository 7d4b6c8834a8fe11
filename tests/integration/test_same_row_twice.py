"""Two queue items for the same never-synced host row (issue 11, defect 3).

A save-signal push plus "sync selected" of the same new customers, two overlapping "sync all" jobs, or two pushes
of the same invoices used to crash the chunk with ``IntegrityError uniq_mapping_host_row`` and retry every other
item in it. Now a chunk coalesces them (one write per host row; the extra items complete as "coalesced" with the
same outcome) and a mapping is created once, whoever gets there first.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from qbo_sync.adapters import get_adapter
from qbo_sync.models import EntityMapping, QueueItem
from qbo_sync.services import mappings as maps
from qbo_sync.services.process import process_items
from qbo_sync.services.queue import apply_outcomes, claim_chunk, create_job, enqueue, start_pull
from tests.factories import CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_pushes_of_the_same_new_invoices_in_one_chunk(org, accountant, run_queue) -> None:
    invoices = [InvoiceFactory(organization=org) for _ in range(3)]
    first = create_job(org.pk, "push", "Invoice", [i.pk for i in invoices], QueueItem.Operation.PUSH)
    second = create_job(org.pk, "push", "Invoice", [i.pk for i in invoices], QueueItem.Operation.PUSH)
    report = run_queue()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, second.state) == ("completed", "completed")
    assert report.retried == 0 and report.failed == 0
    assert accountant.count("Invoice") == 3
    assert EntityMapping.objects.filter(entity_type="Invoice").count() == 3
    coalesced = QueueItem.objects.filter(job=second)
    assert {i.error_code for i in coalesced} == {"coalesced"}


def test_a_save_signal_push_and_sync_selected_of_the_same_new_customers(org, accountant, run_queue) -> None:
    customers = [CustomerFactory(organization=org) for _ in range(3)]  # each save queues a real-time push
    neighbour = CustomerFactory(organization=org)
    job = create_job(org.pk, "push", "Customer", [c.pk for c in customers], QueueItem.Operation.PUSH)
    assert QueueItem.objects.count() == 7
    report = run_queue()
    assert report.chunks == 1 and report.completed == 7 and report.retried == 0
    job.refresh_from_db()
    assert job.state == "completed"
    assert accountant.count("Customer") == 4
    assert EntityMapping.objects.filter(entity_type="Customer", qbo_id__isnull=False).count() == 4
    assert EntityMapping.objects.get(object_id=str(neighbour.pk)).qbo_id


def test_a_failure_is_shared_by_the_coalesced_items(org, accountant, run_queue) -> None:
    invoice = InvoiceFactory(organization=org, lines=0)  # invalid: no line
    create_job(org.pk, "push", "Invoice", [invoice.pk], QueueItem.Operation.PUSH)
    enqueue(org.pk, "Invoice", [invoice.pk], QueueItem.Operation.PUSH)
    run_queue()
    items = list(QueueItem.objects.filter(entity_type="Invoice"))
    assert [i.status for i in items] == ["failed", "failed"]
    assert all("is not valid and was not sent" in i.last_error for i in items)
    assert accountant.count("Invoice") == 0


def test_a_mapping_is_created_once_whoever_gets_there_first(org) -> None:
    customer = CustomerFactory(organization=org)
    adapter = get_adapter("Customer")
    realm = org.qbo_connection.realm_id
    first = maps.save_new(maps.new_mapping(adapter, customer, org.pk, realm))
    second = maps.save_new(maps.new_mapping(adapter, customer, org.pk, realm))  # another worker, same moment
    assert second.pk == first.pk
    assert EntityMapping.objects.filter(object_id=str(customer.pk)).count() == 1


def test_a_pull_links_a_row_whose_first_push_has_not_finished(org, accountant, run_queue) -> None:
    customer = CustomerFactory(organization=org, display_name="Acme Ltd")
    QueueItem.objects.all().delete()
    # Its push started (the mapping exists, no QBO id yet) when the accountant's own record arrives in a pull.
    maps.save_new(maps.new_mapping(get_adapter("Customer"), customer, org.pk, org.qbo_connection.realm_id))
    remote = accountant.create("Customer", {"DisplayName": "Acme Ltd"}, request_id="acct-acme")
    job = start_pull(org.pk, "Customer")
    run_queue()
    job.refresh_from_db()
    assert job.state == "completed"
    mapping = EntityMapping.objects.get(object_id=str(customer.pk))
    assert mapping.qbo_id == remote["Id"]


def test_a_row_another_worker_is_writing_waits_for_it(org, accountant, run_queue) -> None:
    """Two overlapping jobs, two workers, the same new invoices in both chunks at once (PostgreSQL's SKIP LOCKED
    hands them out): the younger items wait instead of sending a second create."""
    invoices = [InvoiceFactory(organization=org) for _ in range(2)]
    QueueItem.objects.all().delete()
    first = create_job(org.pk, "push", "Invoice", [i.pk for i in invoices], QueueItem.Operation.PUSH)
    second = create_job(org.pk, "push", "Invoice", [i.pk for i in invoices], QueueItem.Operation.PUSH)
    _, chunk_a = claim_chunk("worker-a", limit=2)
    _, chunk_b = claim_chunk("worker-b", limit=2)
    assert {i.job_id for i in chunk_a} == {first.pk} and {i.job_id for i in chunk_b} == {second.pk}

    outcomes_b = process_items(org.pk, chunk_b)  # worker B runs while worker A holds the same rows
    assert {o.result for o in outcomes_b.values()} == {"wait"}
    assert accountant.count("Invoice") == 0
    apply_outcomes(chunk_b, outcomes_b)
    apply_outcomes(chunk_a, process_items(org.pk, chunk_a))
    assert accountant.count("Invoice") == 2

    QueueItem.objects.filter(status="pending").update(next_attempt_at=timezone.now())
    run_queue()
    assert accountant.count("Invoice") == 2
    assert set(QueueItem.objects.values_list("status", flat=True)) == {"completed"}
    assert {i.attempts for i in QueueItem.objects.filter(job=second)} == {0}
