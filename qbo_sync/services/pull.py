"""Pull: QuickBooks changes into host rows. Customers and items (three-way merge), payments (onto invoices).

* Incremental per entity: CDC since the cursor (the client handles the 30-day look-back and the 1,000-object
  cap), or, with no cursor yet, every record (``Active IN (true, false)``: inactive ones too), page by page.
* A QBO version already applied (same Id and SyncToken as the mapping holds) is skipped: re-reading an overlap
  is harmless and a change we pushed ourselves never comes back as a "QBO change".
* Unlinked QBO records are first matched to host rows by natural key (DisplayName / email, item Name / SKU), so
  connecting to a company that already has data never duplicates it; only then are host rows created.
* The cursor advances only after the page it covers is committed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, TypedDict

from django.db import models, transaction
from django.utils import dateparse, timezone

from qbo_sync import registry
from qbo_sync.adapters import HostAdapter, get_adapter, get_invoice_adapter
from qbo_sync.conf import host_label
from qbo_sync.exceptions import QboApiError, QboNotFound
from qbo_sync.mapping import Mapper, get_mapper
from qbo_sync.mapping import payments as payment_rules
from qbo_sync.mapping.base import MappingError, money
from qbo_sync.models import EntityMapping, PullCursor, QueueItem, SyncLog
from qbo_sync.services import mappings as maps
from qbo_sync.services.apply import Applied, already_applied, apply_payment_state, apply_qbo_version
from qbo_sync.services.context import SyncContext, customer_of, query_in
from qbo_sync.services.echo import applying_qbo_changes
from qbo_sync.services.merges import MergeCounts, apply_merge, apply_merge_events, find_survivor
from qbo_sync.services.outcomes import Outcome, outcome_for_error
from qbo_sync.services.plans import plan_pull
from qbo_sync.services.queue import enqueue

logger = logging.getLogger(__name__)

PAGE_SIZE = 1000


# --- one record ---------------------------------------------------------------------------------------------------


def apply_and_queue_rest(ctx: SyncContext, adapter: HostAdapter, mapping: EntityMapping, obj: models.Model,
                         payload: dict[str, Any]) -> Applied:
    """Apply one QBO version (:func:`qbo_sync.services.apply.apply_qbo_version`); what QuickBooks still lacks is
    queued as a push of the row (the pull never sends anything itself)."""
    applied = apply_qbo_version(ctx, adapter, mapping, obj, payload)
    queue_rest(ctx, adapter.entity, mapping, applied)
    return applied


def queue_rest(ctx: SyncContext, entity: str, mapping: EntityMapping, applied: Applied | None) -> None:
    if applied is not None and applied.to_qbo:
        enqueue(ctx.organization_id, entity, [mapping.object_id], QueueItem.Operation.PUSH)


class PullCounts(MergeCounts):
    """What a pull of customers or items did (its queue item's message and its log line list the figures)."""

    seen: int
    created: int
    linked: int
    updated: int
    skipped: int
    deactivated: int


class PaymentPullCounts(TypedDict):
    """What a pull of payment states did: invoices seen, their payment state updated, or already known."""

    seen: int
    updated: int
    skipped: int


# --- customers and items ------------------------------------------------------------------------------------------


def pull_names(ctx: SyncContext, entity: str, *, full: bool = False, qbo_ids: Sequence[str] = (),
               since: dt.datetime | None = None) -> PullCounts:
    """Pull changed customers or items, in the window :func:`~qbo_sync.services.plans.plan_pull` gives: just
    ``qbo_ids`` (a webhook), everything, or changes since ``since`` (else the cursor). Returns counts."""
    counts = PullCounts(seen=0, created=0, linked=0, updated=0, skipped=0, deactivated=0)
    plan = plan_pull(ctx, entity, full=full, since=since, qbo_ids=qbo_ids)
    if plan.mode == "targeted":
        rows = []
        for qbo_id in plan.qbo_ids:
            try:
                rows.append(ctx.client.read(entity, qbo_id))
            except QboNotFound:
                continue
        apply_page(ctx, entity, rows, counts)
        return counts
    cursor, _ = PullCursor.objects.get_or_create(organization_id=ctx.organization_id, entity_type=entity)
    started = timezone.now()
    for mapping, applied in apply_merge_events(ctx, entity, counts):
        queue_rest(ctx, entity, mapping, applied)
    if plan.full:
        sql = f"SELECT * FROM {entity} WHERE Active IN (true, false) ORDERBY Id"  # noqa: S608
        page: list[dict[str, Any]] = []
        for row in ctx.client.query_all(sql, page_size=PAGE_SIZE):
            page.append(row)
            if len(page) >= PAGE_SIZE:
                apply_page(ctx, entity, page, counts)
                page = []
        apply_page(ctx, entity, page, counts)
        until = started
    else:
        result = ctx.client.cdc(list(plan.reads), plan.feed_start)
        # Deletions first: a merged-away customer's row is re-linked to the survivor before the survivor's own
        # change is applied (else the survivor, unlinked, would get a new host row of its own).
        apply_deleted(ctx, entity, result.deleted.get(entity, []), counts)
        apply_page(ctx, entity, result.changed.get(entity, []), counts)
        until = result.until
    PullCursor.objects.filter(pk=cursor.pk).update(changed_since=until, last_run_at=started,
                                                   last_success_at=timezone.now())
    return counts


def apply_page(ctx: SyncContext, entity: str, rows: Sequence[dict[str, Any]], counts: PullCounts) -> None:
    """Apply one page of QBO records: skip known versions, link or create new ones in bulk, merge the rest."""
    if not rows:
        return
    adapter = get_adapter(entity)
    mapper = get_mapper(entity)
    counts["seen"] += len(rows)
    by_qbo = maps.mappings_for_qbo_ids(ctx.realm_id, entity, [r["Id"] for r in rows])
    host_rows = {str(pk): o for pk, o in adapter.get_queryset(ctx.organization_id)
                 .in_bulk([m.object_id for m in by_qbo.values()]).items()}
    unlinked: list[dict[str, Any]] = []
    for row in rows:
        mapping = by_qbo.get(str(row["Id"]))
        if mapping is None:
            unlinked.append(row)
        elif already_applied(mapping, row):
            counts["skipped"] += 1  # this version is already applied (or is our own push coming back)
        elif mapping.object_id in host_rows:
            apply_and_queue_rest(ctx, adapter, mapping, host_rows[mapping.object_id], row)
            counts["updated"] += 1
    if unlinked:
        link_or_create(ctx, adapter, mapper, unlinked, counts)


def link_or_create(ctx: SyncContext, adapter: HostAdapter, mapper: Mapper, rows: list[dict[str, Any]],
                   counts: PullCounts) -> None:
    """QBO records with no twin yet: match host rows by natural key first, create host rows for the rest."""
    candidates = unlinked_host_rows_by_key(ctx, adapter)
    to_create: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for row in rows:
        values = mapper.from_qbo(row)
        match = None
        for key_name, key in mapper.SPEC.natural_key_values(values).items():
            match = candidates.get((key_name, key))
            if match is not None:
                break
        if match is not None:
            for key_name, key in adapter_keys(adapter, mapper, match).items():
                candidates.pop((key_name, key), None)
            # The row may have a mapping already (its first push started but has no QBO id yet): adopt it.
            mapping = maps.save_new(maps.new_mapping(adapter, match, ctx.organization_id, ctx.realm_id))
            if mapping.qbo_id and mapping.qbo_id != str(row["Id"]):
                to_create.append((row, values))  # linked meanwhile to another record: this one is new
                continue
            maps.link_to(mapping, str(row["Id"]))
            apply_and_queue_rest(ctx, adapter, mapping, match, row)
            counts["linked"] += 1
        else:
            to_create.append((row, values))
    if not to_create:
        return
    with transaction.atomic(), applying_qbo_changes():
        objs = adapter.bulk_create_from_values(ctx.organization_id, [v for _, v in to_create])
        maps.create_linked_many(adapter, ctx.organization_id, ctx.realm_id,
                                [(obj, row, values, mapper.qbo_updated_at(row))
                                 for obj, (row, values) in zip(objs, to_create, strict=True)])
    counts["created"] += len(to_create)


def adapter_keys(adapter: HostAdapter, mapper: Mapper, obj: models.Model) -> dict[str, str]:
    """A host row's natural keys, by the entity's one definition (``SPEC.natural_keys``)."""
    return mapper.SPEC.natural_key_values(adapter.to_values(obj))


def unlinked_host_rows_by_key(ctx: SyncContext, adapter: HostAdapter) -> dict[tuple[str, str], models.Model]:
    """Host rows of this organization with no QBO twin, by each of their natural keys (one query + one)."""
    key = f"unlinked:{adapter.entity}"
    if key not in ctx.cache:
        mapper = get_mapper(adapter.entity)
        # Compared in Python: object_id is text and host keys may be integers (PostgreSQL refuses bigint = varchar).
        # Rows linked in another company (before a reconnect) are unlinked here: matched again by natural key.
        linked = set(EntityMapping.objects.filter(content_type=maps.content_type_for(adapter), qbo_id__isnull=False,
                                                  organization_id=ctx.organization_id, realm_id=ctx.realm_id)
                     .values_list("object_id", flat=True))
        by_key: dict[tuple[str, str], models.Model] = {}
        for obj in adapter.get_queryset(ctx.organization_id).iterator(chunk_size=2000):
            if str(obj.pk) in linked:
                continue
            for key_name, value in adapter_keys(adapter, mapper, obj).items():
                by_key.setdefault((key_name, value), obj)
        ctx.cache[key] = by_key
    return ctx.cache[key]


def apply_deleted(ctx: SyncContext, entity: str, stubs: Iterable[dict[str, Any]], counts: PullCounts) -> None:
    """Customers and items cannot be deleted in QBO, but merged ones come back as deleted. A customer whose
    survivor is known (a ``Merge`` webhook, or where its invoices went) is re-linked or flagged
    (:func:`apply_merge`); any other such record's twin is deactivated."""
    adapter = get_adapter(entity)
    mappings = maps.mappings_for_qbo_ids(ctx.realm_id, entity, [s["Id"] for s in stubs])
    for stub in stubs:
        mapping = mappings.get(str(stub["Id"]))
        if mapping is None or mapping.merged_into:
            continue
        survivor = find_survivor(ctx, mapping) if entity == "Customer" else None
        if survivor:
            queue_rest(ctx, entity, mapping, apply_merge(ctx, adapter, mapping, survivor, counts))
            continue
        obj = adapter.get_queryset(ctx.organization_id).filter(pk=mapping.object_id).first()
        if obj is not None:
            with applying_qbo_changes():
                adapter.apply_values(obj, {"active": False})
        maps.record_failure(mapping, "deleted (merged) in QuickBooks")
        maps.log(ctx.organization_id, "deleted_in_qbo", f"{entity} {stub['Id']} was deleted or merged in QuickBooks; "
                 f"the row in {host_label()} was deactivated", level=SyncLog.Level.WARNING, entity_type=entity,
                 object_id=mapping.object_id, qbo_id=stub["Id"], job_id=ctx.job_id)
        counts["deactivated"] += 1


# --- payments -----------------------------------------------------------------------------------------------------


def pull_payments(ctx: SyncContext, *, full: bool = False, qbo_ids: Sequence[str] = (),
                  since: dt.datetime | None = None) -> PaymentPullCounts:
    """Payment state onto every synced invoice QBO changed (Balance, LinkedTxn), plus the local overdue sweep. The
    window is :func:`~qbo_sync.services.plans.plan_pull`'s."""
    counts = PaymentPullCounts(seen=0, updated=0, skipped=0)
    plan = plan_pull(ctx, "Payment", full=full, since=since, qbo_ids=qbo_ids)
    cursor, _ = PullCursor.objects.get_or_create(organization_id=ctx.organization_id, entity_type="Payment")
    started = timezone.now()
    invoices: list[dict[str, Any]] = []
    payments: list[dict[str, Any]] = []
    refunds: list[dict[str, Any]] = []
    if plan.mode == "targeted":
        invoices = [ctx.client.read("Invoice", i) for i in plan.qbo_ids]
    elif plan.full:
        mapped = list(EntityMapping.objects.filter(organization_id=ctx.organization_id, entity_type="Invoice",
                                                   realm_id=ctx.realm_id, qbo_id__isnull=False)
                      .values_list("qbo_id", flat=True))
        for start in range(0, len(mapped), 500):
            ids = ", ".join(f"'{i}'" for i in mapped[start:start + 500])
            invoices.extend(ctx.client.query_all(f"SELECT * FROM Invoice WHERE Id IN ({ids})"))  # noqa: S608
    else:
        result = ctx.client.cdc(list(plan.reads), plan.feed_start)
        invoices, payments = result.changed.get("Invoice", []), result.changed.get("Payment", [])
        refunds = result.changed.get("RefundReceipt", [])
        note_deleted_invoices(ctx, result.deleted.get("Invoice", []))
    invoices, payments, refunded = credits_and_refunds(ctx, invoices, payments, refunds)
    apply_payment_states(ctx, invoices, payments, counts, refunded)
    get_invoice_adapter().refresh_overdue(ctx.organization_id, ctx.today)
    if plan.mode != "targeted":
        PullCursor.objects.filter(pk=cursor.pk).update(changed_since=started, last_run_at=started,
                                                       last_success_at=timezone.now())
    return counts


def _received(invoice: dict[str, Any]) -> bool:
    try:
        return money(invoice.get("TotalAmt", 0), field_name="TotalAmt") > money(invoice.get("Balance", 0),
                                                                                field_name="Balance")
    except MappingError:
        return False


def credits_and_refunds(ctx: SyncContext, invoices: list[dict[str, Any]], payments: list[dict[str, Any]],
                        changed_refunds: Sequence[dict[str, Any]]
                        ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Decimal]]:
    """What telling money, credit and refunds apart needs besides the changed invoices (rules in
    ``qbo_sync.mapping.payments``): the refund receipts of the customers concerned, those customers' other synced
    invoices (a refund is shared among them), and every payment our invoices list that was not read yet (only a
    payment's lines say which part was credit). A few bounded queries; nothing when no invoice of ours received
    anything and no refund changed. Returns (invoices, payments, {invoice id: amount refunded})."""
    ours = maps.mappings_for_qbo_ids(ctx.realm_id, "Invoice", [i["Id"] for i in invoices])
    customers = {customer_of(i) for i in invoices if str(i["Id"]) in ours and _received(i)}
    customers |= {customer_of(r) for r in changed_refunds}
    customers.discard("")
    refunds = query_in(ctx, "RefundReceipt", "CustomerRef", customers) if customers else []
    refund_customers = {customer_of(r) for r in refunds} - {""}
    if refund_customers:
        known = {str(i["Id"]) for i in invoices}
        others = [i for i in query_in(ctx, "Invoice", "CustomerRef", refund_customers) if str(i["Id"]) not in known]
        linked = maps.mappings_for_qbo_ids(ctx.realm_id, "Invoice", [i["Id"] for i in others])
        invoices = [*invoices, *(i for i in others if str(i["Id"]) in linked)]
        ours = {**ours, **linked}
    have = {str(p.get("Id")) for p in payments}
    missing = {str(link.get("TxnId")) for i in invoices if str(i["Id"]) in ours and _received(i)
               for link in i.get("LinkedTxn") or [] if link.get("TxnType") == "Payment"} - have
    if missing:
        payments = [*payments, *query_in(ctx, "Payment", "Id", missing)]
    mine = [i for i in invoices if str(i["Id"]) in ours]
    refunded = payment_rules.refunds_by_invoice(mine, payments, refunds) if refunds else {}
    return invoices, payments, refunded


def note_deleted_invoices(ctx: SyncContext, stubs: Sequence[dict[str, Any]]) -> None:
    """An invoice of ours deleted in QuickBooks: never silently re-created or ignored; flagged for a person."""
    mappings = maps.mappings_for_qbo_ids(ctx.realm_id, "Invoice", [s["Id"] for s in stubs])
    for mapping in mappings.values():
        message = (f"Invoice {mapping.snapshot.get('doc_number', mapping.object_id)} was deleted in QuickBooks "
                   f"(id {mapping.qbo_id}); {host_label(capital=True)} still has it. Void it there or re-issue it.")
        maps.record_failure(mapping, message)
        maps.log(ctx.organization_id, "deleted_in_qbo", message, level=SyncLog.Level.WARNING, entity_type="Invoice",
                 object_id=mapping.object_id, qbo_id=mapping.qbo_id, job_id=ctx.job_id)


def apply_payment_states(ctx: SyncContext, invoices: Sequence[dict[str, Any]], payments: Sequence[dict[str, Any]],
                         counts: PaymentPullCounts, refunded: dict[str, Decimal] | None = None) -> None:
    adapter = get_invoice_adapter()
    counts["seen"] += len(invoices)
    by_qbo = maps.mappings_for_qbo_ids(ctx.realm_id, "Invoice", [i["Id"] for i in invoices])
    hosts = {str(pk): o for pk, o in adapter.get_queryset(ctx.organization_id)
             .in_bulk([m.object_id for m in by_qbo.values()]).items()}
    for invoice in invoices:
        mapping = by_qbo.get(str(invoice["Id"]))
        if mapping is None or mapping.object_id not in hosts:
            continue  # not one of ours: invoices are never pulled
        known = mapping.sync_token == str(invoice.get("SyncToken"))
        applied = apply_payment_state(ctx, adapter, mapping, hosts[mapping.object_id], invoice, payments,
                                      record_version=not known, refunded=(refunded or {}).get(str(invoice["Id"])))
        # A known version is applied again all the same (cheap, idempotent): the host may have missed it.
        if applied and not known:
            counts["updated"] += 1
        else:
            counts["skipped"] += 1


# --- queue items --------------------------------------------------------------------------------------------------


def run_pull_item(ctx: SyncContext, item: QueueItem) -> Outcome:
    options = (item.job.options if item.job_id and item.job else {}) or {}
    full = bool(options.get("full"))
    # A pull asked for "changes since" a time (qbo_sync pull --since) reads from it once; the cursor then moves on.
    since = dateparse.parse_datetime(options["since"]) if options.get("since") else None
    qbo_ids = [item.qbo_id] if item.qbo_id else []
    counts: PullCounts | PaymentPullCounts
    try:
        target = registry.pull_for(item.entity_type)  # an invoice's pull item reads its payment state
        if target is not None and registry.spec(target).name_list:
            counts = pull_names(ctx, target, full=full, qbo_ids=qbo_ids, since=since)
        elif target == "Payment":
            counts = pull_payments(ctx, full=full, qbo_ids=qbo_ids, since=since)
        else:
            return Outcome.failed(f"{item.entity_type} is never pulled")
    except QboApiError as exc:
        return outcome_for_error(exc)
    summary = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
    maps.log(ctx.organization_id, "pulled", f"Pulled {item.entity_type}: {summary or 'no changes'}",
             entity_type=item.entity_type, job_id=ctx.job_id, **counts)
    return Outcome.completed(summary or "no changes")
