"""Plans, not copies: a preview's verdict for each row is what the push then does (issue 14), against the sandbox.

Rows in every state a push meets (new, changed, unchanged, held, QuickBooks-owned edit, merged away, another
organization's, a create whose answer was lost; invoices new, sent, voided after sending, voided unsent, invalid,
for a merged customer) are previewed, then pushed by the drain; what happened is read back from QuickBooks and the
queue, independently of the plans, and must be what the preview said.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from batchly.models import Customer
from qbo_sync.models import EntityMapping, QueueItem
from qbo_sync.services import jobs, queue
from qbo_sync.services.plans import plan_push
from tests.factories import CustomerFactory, InvoiceFactory, OrganizationFactory
from tests.integration.test_held_conflicts import ACCOUNTANT, BASE, HOST, accountant_edits, pull

pytestmark = pytest.mark.django_db(transaction=True)


def mapping_of(entity: str, obj) -> EntityMapping | None:
    return EntityMapping.objects.filter(entity_type=entity, object_id=str(obj.pk)).first()


def qbo_state(accountant, entity: str) -> dict[str, tuple[str, bool]]:
    """Every record of ``entity`` in QuickBooks: {Id: (SyncToken, voided)}."""
    where = "Active IN (true, false)" if entity != "Invoice" else None
    rows = accountant.query_all(f"SELECT * FROM {entity}" + (f" WHERE {where}" if where else ""))
    return {str(r["Id"]): (str(r["SyncToken"]), str(r.get("PrivateNote") or "").startswith("Voided")) for r in rows}


def observed(entity: str, obj, before_map, before_qbo, after_qbo, item, host_before) -> tuple[str, str]:
    """What the push did to one row, told from the queue, QuickBooks and the host (never from the plans)."""
    if item.status == QueueItem.Status.FAILED:
        return "refused", item.error_code
    assert item.status == QueueItem.Status.COMPLETED, (obj, item.status, item.last_error)
    after = mapping_of(entity, obj)
    old_id = before_map.qbo_id if before_map is not None else None
    if after is not None and after.qbo_id and not old_id:
        return ("link" if after.qbo_id in before_qbo else "create"), ""
    if old_id and after_qbo[old_id][1] and not before_qbo[old_id][1]:
        return "void", ""
    if old_id and after_qbo[old_id][0] != before_qbo[old_id][0]:
        return "update", ""
    if host_before is not None:
        obj.refresh_from_db()
        if obj.taxable != host_before:
            return "revert", ""
    if after is not None and after.conflicts.filter(state="open").exists():
        return "held", ""
    return "skip", ""


#: How a refusal's code reads on the failed queue item.
ITEM_CODES = {("Customer", "invalid"): "mapping"}


def test_every_preview_verdict_is_what_the_push_then_does(org, accountant, run_queue, settings) -> None:
    settings.QBO_SYNC = {**settings.QBO_SYNC, "CRITICAL_FIELDS": {"Customer": ["email"]}}
    unchanged, changed, reverted, merged = (CustomerFactory(organization=org) for _ in range(4))
    held = CustomerFactory(organization=org, email=BASE)
    sent, voided = InvoiceFactory(organization=org), InvoiceFactory(organization=org)
    queue.create_job(org.pk, "push", "Invoice", [sent.pk, voided.pk], QueueItem.Operation.PUSH)
    run_queue()
    # Changed in the host; a QuickBooks-owned field edited in the host; merged away in QuickBooks.
    Customer.objects.filter(pk=changed.pk).update(phone="555-0142", updated_at=timezone.now())
    Customer.objects.filter(pk=reverted.pk).update(taxable=False, updated_at=timezone.now())
    EntityMapping.objects.filter(pk=mapping_of("Customer", merged).pk).update(
        merged_into="9999", last_error="merged in QuickBooks into 9999; use the other row")
    # Held: both sides edited the critical email, the pull opened a conflict.
    Customer.objects.filter(pk=held.pk).update(email=HOST, updated_at=timezone.now())
    accountant_edits(accountant, mapping_of("Customer", held).qbo_id, PrimaryEmailAddr={"Address": ACCOUNTANT})
    pull(org, run_queue)
    run_queue()
    # A create whose answer was lost: the record is in QuickBooks, the row's mapping has no id yet.
    lost = Customer.objects.bulk_create([Customer(organization=org, display_name="Lost Answer Ltd")])[0]
    accountant.create("Customer", {"DisplayName": "Lost Answer Ltd"}, request_id="acct-lost")
    EntityMapping.objects.create(organization=org, entity_type="Customer", content_type=mapping_of(
        "Customer", unchanged).content_type, object_id=str(lost.pk), realm_id=org.qbo_connection.realm_id,
        last_pushed_at=timezone.now())
    new = Customer.objects.bulk_create([Customer(organization=org, display_name="Brand New Ltd")])[0]
    nameless = Customer.objects.bulk_create([Customer(organization=org, display_name="")])[0]
    foreign = CustomerFactory(organization=OrganizationFactory())
    voided.void()
    fresh, invalid = InvoiceFactory(organization=org), InvoiceFactory(organization=org, lines=0)
    void_unsent = InvoiceFactory(organization=org)
    void_unsent.void()
    for_merged = InvoiceFactory(organization=org, customer=merged)
    QueueItem.objects.all().delete()

    rows = {"Customer": [unchanged, changed, reverted, merged, held, lost, new, nameless, foreign],
            "Invoice": [fresh, sent, voided, void_unsent, invalid, for_merged]}
    verdicts = {entity: {p.object_id: p for p in plan_push(org.pk, entity, [o.pk for o in objs])}
                for entity, objs in rows.items()}
    # The previews every surface shows are these plans (another organization's row cannot be named there).
    for entity, objs in rows.items():
        shown = jobs.preview_push(org.pk, entity, [o.pk for o in objs if o is not foreign])
        assert [(p.object_id, p.action, p.reason) for p in shown] == [
            (p.object_id, p.action, p.reason) for p in verdicts[entity].values() if p.object_id != str(foreign.pk)]
    assert {entity: sorted(p.action for p in plans.values()) for entity, plans in verdicts.items()} == {
        "Customer": sorted(["skip", "update", "revert", "refused", "held", "link", "create", "refused",
                            "refused"]),
        "Invoice": sorted(["create", "skip", "void", "skip", "refused", "refused"])}

    before_maps = {(e, str(o.pk)): mapping_of(e, o) for e, objs in rows.items() for o in objs}
    before_qbo = {e: qbo_state(accountant, e) for e in rows}
    taxable = dict(Customer.objects.values_list("pk", "taxable"))
    queue.enqueue(org.pk, "Customer", [o.pk for o in rows["Customer"] if o is not foreign], QueueItem.Operation.PUSH)
    # Enqueueing refuses another organization's row; an item already queued for it (the row moved) meets the push.
    QueueItem.objects.create(organization=org, entity_type="Customer", object_id=str(foreign.pk),
                             operation=QueueItem.Operation.PUSH, next_attempt_at=timezone.now())
    jobs.start_push(org.pk, "Invoice", [o.pk for o in rows["Invoice"]])
    run_queue()
    after_qbo = {e: qbo_state(accountant, e) for e in rows}

    for entity, objs in rows.items():
        for obj in objs:
            plan = verdicts[entity][str(obj.pk)]
            item = QueueItem.objects.get(entity_type=entity, object_id=str(obj.pk), organization=org)
            did = observed(entity, obj, before_maps[(entity, str(obj.pk))], before_qbo[entity], after_qbo[entity],
                           item, taxable.get(obj.pk) if entity == "Customer" else None)
            expected = (plan.action, ITEM_CODES.get((entity, plan.code), plan.code))
            assert did == expected, f"{entity} {obj} ({plan.reason}): previewed {expected}, the push did {did}"
    # Nothing else was written: one new customer and one new invoice (plus the new invoice's own customer and
    # items, sent first), the lost one linked, never created twice.
    assert len(after_qbo["Customer"]) == len(before_qbo["Customer"]) + 2
    assert len(after_qbo["Invoice"]) == len(before_qbo["Invoice"]) + 1


def test_a_plan_asks_the_database_a_fixed_number_of_queries(org, run_queue) -> None:
    """A preview of 500 rows is as cheap in queries as one of 5 (the push plans every chunk the same way)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries(entity: str, ids: list) -> int:
        with CaptureQueriesContext(connection) as ctx:
            plan_push(org.pk, entity, ids)
        return len(ctx.captured_queries)

    customers = [CustomerFactory(organization=org) for _ in range(12)]
    invoices = [InvoiceFactory(organization=org, customer=customers[n % 3]) for n in range(6)]
    run_queue()  # some linked, some not: every branch of the plan is taken
    Customer.objects.filter(pk=customers[0].pk).update(phone="555-0199", updated_at=timezone.now())
    queries("Invoice", [invoices[0].pk])  # content types are cached after their first lookup
    assert queries("Customer", [c.pk for c in customers[:3]]) == queries("Customer", [c.pk for c in customers])
    assert queries("Invoice", [i.pk for i in invoices[:2]]) == queries("Invoice", [i.pk for i in invoices])
