"""Push: host rows to QuickBooks. Customers and items (create or sparse update), invoices (create once, void).

The rules (which fields go, who owns what) come from ``qbo_sync.mapping``; this module decides *what to send*
and records *what happened*, with these guarantees:

* every write carries a ``requestid`` derived from its request's key, fixed when a queue item was enqueued (batches:
  from the sorted keys of their requests),
  so a retry after a lost response is answered with the original result instead of a second record;
* before a create that may already have reached QuickBooks (a previous attempt started and its answer was lost),
  the record is looked up by its natural key (DisplayName, item Name, invoice DocNumber) and linked, not created;
* a host value equal to the last-synced snapshot is not sent (a pulled change never echoes back);
* a held field (its conflict waits for a person, see :mod:`qbo_sync.services.held`) is never sent;
* an invoice is created once and never updated: a correction is a void plus a new invoice.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Literal

from django.db import connections, models, transaction

from qbo_sync.adapters import HostAdapter, InvoiceAdapterMixin, get_adapter, get_invoice_adapter
from qbo_sync.client import BatchOperation, quote_value
from qbo_sync.conf import host_label, qbo_settings
from qbo_sync.exceptions import QboApiError, QboDuplicateName, QboNotFound, QboStaleObject
from qbo_sync.mapping import Mapper, get_mapper
from qbo_sync.mapping import invoices as invoice_rules
from qbo_sync.mapping.base import (
    MappingError,
    NaturalKey,
    expand_groups,
    jsonable,
)
from qbo_sync.models import EntityMapping, QueueItem, SyncLog
from qbo_sync.services import mappings as maps
from qbo_sync.services.apply import Applied, apply_payment_state, apply_payment_state_many, apply_qbo_version
from qbo_sync.services.context import SyncContext
from qbo_sync.services.held import held_fields, track_values
from qbo_sync.services.merges import apply_merge, find_survivor
from qbo_sync.services.outcomes import Outcome, outcome_for_error
from qbo_sync.services.plans import PENDING_ID, PushPlan, changed_fields, plan_push
from qbo_sync.services.queue import enqueue

logger = logging.getLogger(__name__)

BATCH_NAMESPACE = uuid.UUID("5d7c1f0e-3b7a-4c56-9d0c-2f1e8a4b6c10")


@dataclass(frozen=True)
class PushRequest:
    """One thing to write for one host row: what a queue item asks, or a write the push itself decides to make
    (a dependency sent first, what a merged QBO version still lacks). Outcomes are keyed by the request."""

    entity: str
    object_id: str
    operation: str  # push | create | update | void
    #: Sent to QuickBooks as the ``requestid`` of a single write (a batch's comes from its requests' keys).
    idempotency_key: str

    @classmethod
    def of(cls, item: QueueItem) -> PushRequest:
        return cls(item.entity_type, str(item.object_id), str(item.operation), item.idempotency_key)


def batch_request_id(requests: Sequence[PushRequest]) -> str:
    """Deterministic for the same set of requests: a re-run of the same batch gets QBO's original answer."""
    return str(uuid.uuid5(BATCH_NAMESPACE, ",".join(sorted(r.idempotency_key for r in requests))))


@dataclass
class Write:
    """One planned write: the request, the host row, its mapping and the payload."""

    request: PushRequest
    obj: models.Model
    mapping: EntityMapping
    payload: dict[str, Any]
    operation: Literal["create", "update"]
    values: dict[str, Any]
    on_success: Callable[[Write, dict[str, Any]], None] | None = None
    #: The canonical fields this write sends (after it, QuickBooks holds the host's values for them).
    sent_fields: tuple[str, ...] = ()


def send(ctx: SyncContext, entity: str, writes: Sequence[Write]) -> dict[PushRequest, dict[str, Any] | Exception]:
    """Send writes: one request for a single write, otherwise groups of up to BATCH_SIZE, several calls in flight.

    Throughput (QBO limits per realm): a batch call carries BATCH_SIZE writes but only BATCH_CALLS_PER_MINUTE of
    them are allowed, while single requests have the rest of RATE_LIMIT_PER_MINUTE. So a full group goes as one
    batch or as single requests, keeping this process's mix near the share that fills both budgets (1,200 batched
    + 460 single writes a minute with QBO's limits); a partial group always goes as a batch. Up to
    MAX_CONCURRENT_REQUESTS calls run at once (threads); the throttle paces them. Guarantees kept: a batch's
    requestid comes from its requests' idempotency keys, a single write's from its own; every write gets its own
    result or error; ``last_pushed_at`` is marked before anything leaves.
    """
    results: dict[PushRequest, dict[str, Any] | Exception] = {}
    if not writes:
        return results
    # Mark "a push started" before anything leaves: a later attempt then knows to look before creating again.
    maps.mark_push_started(w.mapping for w in writes)
    calls = plan_calls(ctx.realm_id, writes)
    if len(calls) == 1:
        results.update(send_call(ctx, entity, calls[0]))
        return results
    run_concurrently([partial(send_call, ctx, entity, call) for call in calls], results)
    return results


def send_call(ctx: SyncContext, entity: str, call: Sequence[Write]) -> dict[PushRequest, dict[str, Any] | Exception]:
    """One request: a single create/update (requestid = the request's key) or one batch (requestid from its keys)."""
    if len(call) == 1:
        w = call[0]
        key = w.request.idempotency_key
        try:
            payload = jsonable(w.payload)
            if w.operation == "create":
                return {w.request: ctx.client.create(entity, payload, request_id=key)}
            return {w.request: ctx.client.update(entity, payload, request_id=key, sparse=True)}
        except QboApiError as exc:
            return {w.request: exc}
    ops = [BatchOperation(bid=f"b{n}", operation=w.operation, entity=entity, payload=jsonable(w.payload))
           for n, w in enumerate(call)]
    try:
        answers = ctx.client.batch(ops, request_id=batch_request_id([w.request for w in call]))
    except QboApiError as exc:
        return {w.request: exc for w in call}
    return {w.request: answer.error if answer.error is not None else (answer.payload or {})
            for w, answer in zip(call, answers, strict=True)}


#: Writes this process sent per realm, [in batches, as single requests]: steers the batch/single mix.
_mix: dict[str, list[int]] = {}
_mix_lock = threading.Lock()


def batch_share() -> float:
    """The share of writes to batch so that both budgets fill: B·S / (B·S + R - B) (0.72 with QBO's limits)."""
    size = max(1, min(int(qbo_settings.BATCH_SIZE), 30))
    per_minute = int(qbo_settings.BATCH_CALLS_PER_MINUTE)
    batched = per_minute * size
    singles = max(int(qbo_settings.RATE_LIMIT_PER_MINUTE) - per_minute, 0)
    return batched / (batched + singles) if batched + singles else 1.0


def plan_calls(realm_id: str, writes: Sequence[Write]) -> list[list[Write]]:
    """Group writes into calls (a list of one write = a single request), batches first."""
    size = max(1, min(int(qbo_settings.BATCH_SIZE), 30))
    groups = [list(writes[start:start + size]) for start in range(0, len(writes), size)]
    if len(groups) == 1:
        return groups
    share = batch_share()
    batches: list[list[Write]] = []
    singles: list[list[Write]] = []
    with _mix_lock:
        mix = _mix.setdefault(str(realm_id), [0, 0])
        for group in groups:
            total = mix[0] + mix[1]
            if len(group) == size > 1 and total and mix[0] / total > share:
                singles.extend([w] for w in group)
                mix[1] += len(group)
            else:
                batches.append(group)
                mix[0] += len(group)
    return batches + singles


def run_concurrently(tasks: Sequence[Callable[[], dict[Any, Any]]], results: dict[Any, Any]) -> None:
    """Run the calls on up to MAX_CONCURRENT_REQUESTS threads, in order; their results land in ``results``.
    Each thread closes its own database connections (the shared throttle may have opened one)."""
    pending = list(reversed(tasks))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            while True:
                with lock:
                    if not pending or errors:
                        return
                    task = pending.pop()
                try:
                    answer = task()
                except BaseException as exc:  # re-raised in the caller's thread, as a sequential send would
                    with lock:
                        errors.append(exc)
                    return
                with lock:
                    results.update(answer)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, name=f"qbo-send-{n}", daemon=True)
               for n in range(max(1, min(int(qbo_settings.MAX_CONCURRENT_REQUESTS), len(tasks))))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


# --- customers and items ---------------------------------------------------------------------------------------


def push_names(ctx: SyncContext, entity: str, requests: Sequence[PushRequest]) -> dict[PushRequest, Outcome]:
    """Create or update customers / items in QuickBooks, as :func:`~qbo_sync.services.plans.plan_push` decides."""
    adapter = get_adapter(entity)
    mapper = get_mapper(entity)
    outcomes: dict[PushRequest, Outcome] = {}
    plans = {p.object_id: p for p in plan_push(ctx, entity, [r.object_id for r in requests])}
    writes: list[Write] = []
    looking: list[Write] = []
    for request in requests:
        plan = plans[request.object_id]
        if plan.action == "refused":
            message = f"{entity} {plan.obj}: {plan.detail}" if plan.code == "invalid" else plan.detail
            if plan.code == "invalid" and plan.obj is not None:
                maps.record_failure(plan.mapping or maps.save_new(
                    maps.new_mapping(adapter, plan.obj, ctx.organization_id, ctx.realm_id)), message)
            outcomes[request] = Outcome.failed(message, code={"invalid": "mapping"}.get(plan.code, plan.code))
            continue
        if plan.conflicts:  # a host edit of a held field is not sent: its open conflict shows it
            track_values(plan.conflicts, host_values=plan.values)
        if plan.action in ("skip", "held"):
            outcomes[request] = Outcome.completed(f"nothing to send: {plan.reason}" if plan.action == "held"
                                                  else plan.reason)
            continue
        obj = plan.row
        mapping = plan.mapping or maps.new_mapping(adapter, obj, ctx.organization_id, ctx.realm_id)
        if plan.action == "revert":
            # Only QuickBooks-owned fields changed in the host: nothing may be sent, and no later pull would see a
            # new QBO version to merge, so merge the current one now (QuickBooks' value goes back, recorded).
            outcomes[request] = put_back_qbo_owned(ctx, adapter, mapping, obj)
            continue
        try:
            write = plan_name_write(ctx, adapter, mapper, request, obj, mapping,
                                    held={f: c.qbo_value for f, c in plan.conflicts.items()}, plan=plan)
        except MappingError as exc:
            maps.record_failure(mapping, str(exc))
            outcomes[request] = Outcome.failed(f"{entity} {obj}: {exc}", code="mapping")
            continue
        if write is None:  # linked by another worker meanwhile, and in step
            outcomes[request] = Outcome.completed("already in step with QuickBooks")
            continue
        writes.append(write)
        if plan.action == "link" and write.operation == "create":
            looking.append(write)
    # A create that may have reached QBO already (its answer was lost), or a row linked in another company before
    # a reconnect, links to what is there (by natural key) instead.
    if looking:
        found = find_by_natural_key(ctx, entity, [w.values for w in looking])
        for w in looking:
            existing = found.get(natural_key_of(entity, w.values))
            if existing is not None:
                writes.remove(w)
                outcomes[w.request] = link_existing(ctx, adapter, w, existing)
    results = send(ctx, entity, writes)
    for w in writes:
        result = results[w.request]
        if isinstance(result, Exception):
            outcomes[w.request] = handle_name_error(ctx, adapter, w, result)
        else:
            outcomes[w.request] = record_name_success(ctx, adapter, w, result)
    return outcomes


def put_back_qbo_owned(ctx: SyncContext, adapter: HostAdapter, mapping: EntityMapping,
                       obj: models.Model) -> Outcome:
    """Merge QuickBooks' current version of a row whose host edits touched only QuickBooks-owned fields."""
    try:
        current = ctx.client.read(adapter.entity, mapping.qbo_id or "")
    except QboApiError as exc:
        return outcome_for_error(exc)
    queue_rest(ctx, adapter.entity, mapping, apply_qbo_version(ctx, adapter, mapping, obj, current, again=True))
    return Outcome.completed("QuickBooks owns the fields changed here: its values were put back")


def queue_rest(ctx: SyncContext, entity: str, mapping: EntityMapping, applied: Applied | None) -> None:
    """Queue a push of what an applied QBO version still lacks (when the push cannot send it in this call)."""
    if applied is not None and applied.to_qbo:
        enqueue(ctx.organization_id, entity, [mapping.object_id], QueueItem.Operation.PUSH)


def send_rest(ctx: SyncContext, adapter: HostAdapter, request: PushRequest, obj: models.Model,
              mapping: EntityMapping, applied: Applied) -> None:
    """Send at once, through the normal path (plan, send, record), what an applied QBO version still lacks: after
    a stale-object error or a first link, the host's values go now, not on a later drain. Its requestid names the
    merged version, so a retry of this follow-up write is answered with the original result. Raises its error."""
    if not applied.to_qbo:
        return
    follow = replace(request, operation=QueueItem.Operation.UPDATE,
                     idempotency_key=f"merge-{mapping.pk}-{mapping.sync_token}")
    write = plan_name_write(ctx, adapter, get_mapper(adapter.entity), follow, obj, mapping)
    if write is None:
        return
    answer = send(ctx, adapter.entity, [write])[follow]
    if isinstance(answer, Exception):
        raise answer
    record_name_success(ctx, adapter, write, answer)


def plan_name_write(ctx: SyncContext, adapter: HostAdapter, mapper: Mapper, request: PushRequest, obj: models.Model,
                    mapping: EntityMapping, *, held: dict[str, Any] | None = None,
                    plan: PushPlan | None = None) -> Write | None:
    """The write one row needs, or ``None``: a create of every synced field, or a sparse update of the fields the
    row's ``plan`` names (:func:`~qbo_sync.services.plans.changed_fields` when not given). ``held``: its held
    fields with QuickBooks' values (looked up when not given); they are never sent, and a group that must go whole
    carries QuickBooks' value for them."""
    values = plan.values if plan is not None and plan.values else adapter.to_values(obj)
    if not mapping.qbo_id:
        if mapping.pk is None:
            mapping = maps.save_new(mapping)
            if mapping.qbo_id:  # another worker linked this row meanwhile: an update, if anything
                return plan_name_write(ctx, adapter, mapper, request, obj, mapping)
        context: dict[str, Any] = {"income_account_ref": income_account_id(ctx)} if adapter.entity == "Item" else {}
        return Write(request, obj, mapping, mapper.to_qbo(values, **context), "create", values,
                     sent_fields=tuple(f for f in mapper.SPEC.fields if f in values))
    spec = mapper.SPEC
    if held is None:
        held = held_fields(mapping)
    # QuickBooks owns some fields (item price and active status): a host edit is put back, never sent.
    fields = plan.fields if plan is not None and plan.action == "update" else changed_fields(
        spec, values, mapping.snapshot, held)
    changed = {f: values[f] for f in fields}
    if not changed:
        return None
    changed = expand_groups(spec, changed, values)
    changed.update({f: qbo_value for f, qbo_value in held.items() if f in changed})
    payload = mapper.to_qbo(changed, qbo_id=mapping.qbo_id, sync_token=mapping.sync_token or "0", sparse=True)
    return Write(request, obj, mapping, payload, "update", values,
                 sent_fields=tuple(f for f in changed if f not in held))


def record_name_success(ctx: SyncContext, adapter: HostAdapter, w: Write, payload: dict[str, Any]) -> Outcome:
    """Record a write QuickBooks accepted, then apply its answer like any QBO version.

    QuickBooks now holds the sent fields, so they join the base. Whatever else its answer shows (a QBO-owned price
    the host had edited, a change QBO made meanwhile) is merged at once: recorded and written to the host now, not
    left for a later pull that would skip this version as already known. What the host changed meanwhile is queued.
    """
    from qbo_sync.signals import entity_pushed

    maps.record_sent(w.mapping, payload, {name: w.values[name] for name in w.sent_fields if name in w.values})
    queue_rest(ctx, adapter.entity, w.mapping, apply_qbo_version(ctx, adapter, w.mapping, w.obj, payload))
    entity_pushed.send(sender=EntityMapping, entity_type=adapter.entity, object_id=w.mapping.object_id,
                       qbo_id=w.mapping.qbo_id, organization_id=ctx.organization_id)
    return Outcome.completed(f"{w.operation}d {adapter.entity} {w.mapping.qbo_id}")


def handle_name_error(ctx: SyncContext, adapter: HostAdapter, w: Write, exc: Exception) -> Outcome:
    entity = adapter.entity
    if isinstance(exc, QboDuplicateName) and w.operation == "create":
        found = find_by_natural_key(ctx, entity, [w.values]).get(natural_key_of(entity, w.values))
        if found is not None and clearly_same(entity, w.values, get_mapper(entity).from_qbo(found)):
            return link_existing(ctx, adapter, w, found)
        key = unique_key(entity)
        message = (f"{entity} {w.obj}: QuickBooks already has a different {entity.lower()} named "
                   f"{str(w.values.get(key.field) or '').strip()!r}. Rename it in {host_label()} (or merge the two in "
                   "QuickBooks), then sync again.")
        maps.record_failure(w.mapping, message)
        return Outcome.failed(message, code=str(exc.code or "6240"))
    if isinstance(exc, QboStaleObject) and w.operation == "update":
        # Someone changed it in QuickBooks since our last sync: apply its version, then send what remains.
        try:
            current = ctx.client.read(entity, w.mapping.qbo_id or "")
            applied = apply_qbo_version(ctx, adapter, w.mapping, w.obj, current)
            send_rest(ctx, adapter, w.request, w.obj, w.mapping, applied)
        except QboApiError as again:
            return outcome_for_error(again)
        return Outcome.completed("QuickBooks had changed too: merged and pushed")
    if isinstance(exc, QboNotFound) and w.operation == "update" and entity == "Customer":
        # Gone from QuickBooks: merged away by the accountant (customers cannot be deleted). Re-link to the
        # survivor or flag the row (merges.apply_merge); the write is sent again only to a live record.
        survivor = find_survivor(ctx, w.mapping)
        if survivor:
            queue_rest(ctx, entity, w.mapping, apply_merge(ctx, adapter, w.mapping, survivor, {}))
            w.mapping.refresh_from_db()
            if w.mapping.merged_into:
                return Outcome.failed(w.mapping.last_error, code="merged")
            # The survivor's version is applied; what the host still has to say is queued there.
            return Outcome.completed(f"merged in QuickBooks into {survivor}: re-linked; the change goes there next")
    outcome = outcome_for_error(exc)
    if outcome.result == "failed":
        maps.record_failure(w.mapping, f"{entity} {w.obj}: {exc}")
    return outcome


def unique_key(entity: str) -> NaturalKey:
    """The entity's natural key that QBO keeps unique (its mapping module's ``SPEC.natural_keys``, first)."""
    key = get_mapper(entity).SPEC.unique_key
    if key is None:
        raise MappingError(f"{entity} has no natural key")
    return key


def natural_key_of(entity: str, values: dict[str, Any]) -> str:
    """The unique natural key of canonical values, normalised (the form ``find_by_natural_key`` keys by)."""
    return unique_key(entity).of(values)


def clearly_same(entity: str, ours: dict[str, Any], theirs: dict[str, Any]) -> bool:
    """Link on a name clash only when it is clearly the same record: the entity's link predicate
    (``SPEC.same_record``: same SKU for items; same email, or person/company name for customers); an entity without
    one links on its unique key alone."""
    same_record = get_mapper(entity).SPEC.same_record
    return same_record is None or same_record(ours, theirs)


def find_by_natural_key(ctx: SyncContext, entity: str, values_list: Sequence[dict[str, Any]]
                        ) -> dict[str, dict[str, Any]]:
    """QBO records (active or not) whose unique natural key equals one of ``values_list``'s, keyed by the
    normalised key (:func:`natural_key_of`).

    QBO compares strings case-insensitively but spacing exactly, so it is asked for every name as typed and
    whitespace-collapsed (one query per 50 names); a name of several words still not found is then asked for with
    ``LIKE 'word%word'`` (one query each: QBO has no OR), which finds it however QBO spaces it. Whatever comes back
    is compared in the normalised form.
    """
    key = unique_key(entity)
    wanted = {key.of(v): v.get(key.field) for v in values_list if key.of(v)}
    names = sorted(set().union(*(key.query_forms(raw) for raw in wanted.values())))
    found: dict[str, dict[str, Any]] = {}
    active = "Active IN (true, false)"

    def ask(where: str) -> None:
        for row in ctx.client.query_all(f"SELECT * FROM {entity} WHERE {where} AND {active}"):  # noqa: S608
            found_key = key.of_qbo(row)
            if found_key in wanted:
                found.setdefault(found_key, row)

    for start in range(0, len(names), 50):
        ask(f"{key.qbo_property} IN ({', '.join(quote_value(n) for n in names[start:start + 50])})")
    for normalised, raw in wanted.items():
        words = str(raw or "").split()
        if normalised not in found and len(words) > 1:
            ask(f"{key.qbo_property} LIKE {quote_value('%'.join(words))}")
    return found


def link_existing(ctx: SyncContext, adapter: HostAdapter, w: Write, payload: dict[str, Any]) -> Outcome:
    """Adopt an existing QBO record as this row's twin, then merge the two (no base: a first link) and send what
    QuickBooks lacks."""
    taken = EntityMapping.objects.filter(realm_id=ctx.realm_id, entity_type=adapter.entity,
                                         qbo_id=str(payload["Id"])).exclude(pk=w.mapping.pk).first()
    if taken is not None:
        message = (f"{adapter.entity} {w.obj}: QuickBooks record {payload['Id']} is already linked to another "
                   f"row ({taken.object_id}). Rename one of them, then sync again.")
        maps.record_failure(w.mapping, message)
        return Outcome.failed(message, code="link")
    maps.link_to(w.mapping, str(payload["Id"]), forget_base=True)
    try:
        applied = apply_qbo_version(ctx, adapter, w.mapping, w.obj, payload)
        send_rest(ctx, adapter, w.request, w.obj, w.mapping, applied)
    except QboApiError as exc:
        return outcome_for_error(exc)
    maps.log(ctx.organization_id, "linked", f"Linked {adapter.entity} {w.obj} to existing QuickBooks record "
             f"{payload['Id']}", entity_type=adapter.entity, object_id=w.mapping.object_id, qbo_id=payload["Id"],
             job_id=ctx.job_id)
    return Outcome.completed(f"linked to existing {adapter.entity} {payload['Id']}")


def income_account_id(ctx: SyncContext) -> str:
    key = "income_account_id"
    if key not in ctx.cache:
        name = qbo_settings.INCOME_ACCOUNT_NAME
        rows = ctx.client.query(f"SELECT * FROM Account WHERE Name = {quote_value(name)}").rows  # noqa: S608
        if not rows:
            rows = ctx.client.query("SELECT * FROM Account WHERE AccountType = 'Income'").rows
        if not rows:
            raise MappingError(f"QuickBooks has no income account named {name!r} (QBO_SYNC INCOME_ACCOUNT_NAME)")
        ctx.cache[key] = str(rows[0]["Id"])
    return ctx.cache[key]


def sales_tax(ctx: SyncContext) -> tuple[str, str]:
    """``(tax model, tax code)`` of the connected company. The model is configured (the connection's own, else
    ``QBO_SYNC["TAX_MODEL"]``) or, with ``"detect"`` (the default), read once per context from the company's
    Preferences as QuickBooks states it: ``TaxPrefs.UsingSalesTax`` false -> ``none``; ``PartnerTaxEnabled`` (the
    Automated Sales Tax engine) true -> ``automated``; otherwise ``manual``."""
    model, code = ctx.connection.sales_tax()
    if model != "detect":
        return model, code
    if "tax_model" not in ctx.cache:
        rows = ctx.client.query("SELECT * FROM Preferences").rows
        prefs = (rows[0] if rows else {}).get("TaxPrefs") or {}
        if not prefs.get("UsingSalesTax", True):
            ctx.cache["tax_model"] = "none"
        elif prefs.get("PartnerTaxEnabled"):
            ctx.cache["tax_model"] = "automated"
        elif "PartnerTaxEnabled" in prefs or "UsingSalesTax" in prefs:
            ctx.cache["tax_model"] = "manual"
        else:  # the company says nothing about tax: let QuickBooks decide, as in an automated company
            ctx.cache["tax_model"] = "automated"
    return ctx.cache["tax_model"], code


# --- invoices ----------------------------------------------------------------------------------------------------


def push_invoices(ctx: SyncContext, requests: Sequence[PushRequest]) -> dict[PushRequest, Outcome]:
    """Create invoices in QuickBooks, once, as :func:`~qbo_sync.services.plans.plan_push` decides. Dependencies
    (customer, items) are pushed first; an invoice voided in the host since it was sent gets its void."""
    adapter = get_invoice_adapter()
    outcomes: dict[PushRequest, Outcome] = {}
    plans = {p.object_id: p for p in plan_push(ctx, "Invoice", [r.object_id for r in requests],
                                               tax=partial(sales_tax, ctx))}
    pending: list[tuple[PushRequest, PushPlan, EntityMapping]] = []
    voids: list[PushRequest] = []
    for request in requests:
        plan = plans[request.object_id]
        if plan.action == "refused":
            mapping = plan.mapping
            if plan.code == "invalid" and plan.obj is not None and mapping is None:
                mapping = maps.save_new(maps.new_mapping(adapter, plan.obj, ctx.organization_id, ctx.realm_id))
            message = (f"Invoice {plan.values.get('doc_number')} is not valid and was not sent: {plan.detail}"
                       if plan.code == "invalid" else plan.detail)
            if plan.code != "tenancy":
                maps.record_failure(mapping, message)
            outcomes[request] = Outcome.failed(message, code=plan.code)
        elif plan.action == "skip":
            outcomes[request] = Outcome.completed(plan.reason)
        elif plan.action == "void":
            voids.append(request)
        else:
            pending.append((request, plan, plan.mapping or maps.new_mapping(adapter, plan.row, ctx.organization_id,
                                                                            ctx.realm_id)))
    if voids:
        outcomes.update(void_invoices(ctx, voids))
    if not pending:
        return outcomes

    dependency_errors = ensure_dependencies(ctx, [p.row for _, p, _ in pending if p.needs])
    writes: list[Write] = []
    needed = {key for _, p, _ in pending for key in p.needs}
    customer_ids = {m.object_id: m.qbo_id for m in maps.mappings_for_objects(
        get_adapter("Customer"), {oid for entity, oid in needed if entity == "Customer"}, ctx.organization_id,
        ctx.realm_id).values()}
    item_ids = {m.object_id: m.qbo_id for m in maps.mappings_for_objects(
        get_adapter("Item"), {oid for entity, oid in needed if entity == "Item"}, ctx.organization_id,
        ctx.realm_id).values()}
    tax_model, tax_code = sales_tax(ctx)
    context: dict[str, Any] = {"tax_code": tax_code} if tax_model == "manual" else {}
    for request, plan, mapping in pending:
        blocked = [dependency_errors[key] for key in plan.needs if key in dependency_errors]
        if blocked:
            # Retry while a dependency may still get through; fail with its reason when it never will.
            outcomes[request] = next((o for o in blocked if o.result == "failed"), blocked[0])
            maps.record_failure(mapping if mapping.pk else None, outcomes[request].message)
            continue
        values = plan.values  # checked by the plan; the ids of what was sent first are filled in now
        if values["customer_qbo_id"] == PENDING_ID:
            values["customer_qbo_id"] = customer_ids.get(values["customer_object_id"], "")
        for line in values["lines"]:
            if line["item_qbo_id"] == PENDING_ID:
                line["item_qbo_id"] = item_ids.get(line["item_object_id"], "")
        writes.append(Write(request, plan.row, mapping, invoice_rules.to_qbo(values, **context), "create", values))
    # Created once under the host-row constraint: a row another worker is pushing right now keeps one mapping.
    stored = maps.save_new_many([w.mapping for w in writes if w.mapping.pk is None])
    for w in list(writes):
        if w.mapping.pk is None:
            w.mapping = stored[w.mapping.object_id]
            if w.mapping.qbo_id:
                writes.remove(w)
                outcomes[w.request] = Outcome.completed(f"already in QuickBooks as invoice {w.mapping.qbo_id}; "
                                                        "an invoice is sent once")

    maybe_sent = [w for w in writes
                  if plans[w.request.object_id].action == "link" or w.mapping.last_pushed_at is not None]
    if maybe_sent:
        existing = find_invoices_by_doc_number(ctx, [w.values["doc_number"] for w in maybe_sent])
        found = [(w, existing[w.values["doc_number"]]) for w in maybe_sent if w.values["doc_number"] in existing]
        for w, _ in found:
            writes.remove(w)
        outcomes.update(record_invoice_successes(ctx, adapter, found, linked=True))
    results = send(ctx, "Invoice", writes)
    accepted: list[tuple[Write, dict[str, Any]]] = []
    for w in writes:
        result = results[w.request]
        if isinstance(result, Exception):
            outcome = outcome_for_error(result)
            if outcome.result == "failed":
                maps.record_failure(w.mapping, f"Invoice {w.values['doc_number']}: {result}")
            outcomes[w.request] = outcome
        else:
            accepted.append((w, result))
    outcomes.update(record_invoice_successes(ctx, adapter, accepted))
    return outcomes


def ensure_dependencies(ctx: SyncContext, invoices: Sequence[models.Model]) -> dict[tuple[str, str], Outcome]:
    """Push the customers and items these invoices need that are not in QuickBooks yet. Returns what failed."""
    from qbo_sync.adapters import registry

    invoice_adapter = get_adapter("Invoice")
    needed: dict[str, dict[str, models.Model]] = {e: {} for e in get_mapper("Invoice").SPEC.depends_on}
    for invoice in invoices:
        for dep in invoice_adapter.dependencies(invoice):
            dep_adapter = registry.for_model(type(dep))
            if dep_adapter is not None and dep_adapter.entity in needed:
                needed[dep_adapter.entity][str(dep.pk)] = dep
    errors: dict[tuple[str, str], Outcome] = {}
    for entity, objs in needed.items():
        adapter = get_adapter(entity)
        mapped = {oid for oid, m in maps.mappings_for_objects(adapter, objs, ctx.organization_id,
                                                               ctx.realm_id).items() if m.qbo_id}
        missing = [oid for oid in objs if oid not in mapped]
        if not missing:
            continue
        # The dependency's own request: its key is fixed by the row and the company, so a retry reuses it.
        requests = [PushRequest(entity, oid, QueueItem.Operation.PUSH,
                                str(uuid.uuid5(BATCH_NAMESPACE, f"dep:{entity}:{oid}:{ctx.realm_id}")))
                    for oid in missing]
        results = push_names(ctx, entity, requests)
        for request in requests:
            outcome = results[request]
            if outcome.result != "completed":
                errors[(entity, request.object_id)] = replace(
                    outcome, message=f"{entity} {objs[request.object_id]} could not be sent first: {outcome.message}")
    return errors


def find_invoices_by_doc_number(ctx: SyncContext, numbers: Sequence[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    numbers = sorted(set(numbers))
    for start in range(0, len(numbers), 50):
        chunk = numbers[start:start + 50]
        sql = f"SELECT * FROM Invoice WHERE DocNumber IN ({', '.join(quote_value(n) for n in chunk)})"  # noqa: S608
        for row in ctx.client.query_all(sql):
            found[str(row.get("DocNumber"))] = row
    return found


def record_invoice_successes(ctx: SyncContext, adapter: InvoiceAdapterMixin,
                             done: Sequence[tuple[Write, dict[str, Any]]], *,
                             linked: bool = False) -> dict[PushRequest, Outcome]:
    """Record the invoices QuickBooks accepted (or that were found there), a chunk at once: one transaction, the
    host's ``mark_sent_many`` (one UPDATE in a host that overrides it) and one ``bulk_update`` of the mappings,
    instead of a transaction and two UPDATEs per invoice (docs/performance.md, "Fleet")."""
    from qbo_sync.signals import entity_pushed

    if not done:
        return {}
    with transaction.atomic():
        adapter.mark_sent_many([w.obj for w, _ in done])
        # QuickBooks' answers carry the invoices' Balance (= TotalAmt when nothing is paid): apply them now, the
        # chunk at once (the host's apply_payment_states); a pull would skip these versions as already known.
        apply_payment_state_many(ctx, adapter, [(w.mapping, w.obj, payload) for w, payload in done])
        for w, payload in done:
            # The host's total is before tax (QuickBooks decides the tax; apply_payment_state wrote it back above):
            # a difference beyond the tax is a lost or changed line.
            mismatch = invoice_rules.compare_total(w.values, payload, tax_included=False)
            # The customer row is kept so a customer merged away in QuickBooks can be traced by its invoices.
            maps.set_synced(w.mapping, payload, {"doc_number": w.values["doc_number"],
                                                 "total": payload.get("TotalAmt"),
                                                 "customer_object_id": w.values["customer_object_id"]},
                            qbo_updated_at=invoice_rules.qbo_updated_at(payload),
                            host_updated_at=adapter.updated_at(w.obj),
                            pushed=True, warning=mismatch.message if mismatch is not None else "")
            if mismatch is not None:
                maps.log(ctx.organization_id, "total_mismatch", f"Invoice {w.values['doc_number']}: "
                         f"{mismatch.message}", level=SyncLog.Level.WARNING, entity_type="Invoice",
                         object_id=w.mapping.object_id, qbo_id=w.mapping.qbo_id, job_id=ctx.job_id)
        maps.save_synced_many([w.mapping for w, _ in done])
    verb = "found already in QuickBooks and linked" if linked else "created"
    outcomes = {}
    for w, payload in done:
        entity_pushed.send(sender=EntityMapping, entity_type="Invoice", object_id=w.mapping.object_id,
                           qbo_id=w.mapping.qbo_id, organization_id=ctx.organization_id)
        outcomes[w.request] = Outcome.completed(f"{verb} as invoice {payload.get('Id')}")
    return outcomes


def void_invoices(ctx: SyncContext, requests: Sequence[PushRequest]) -> dict[PushRequest, Outcome]:
    """Push voids. The current SyncToken is read first (payments change it), then the void is sent once."""
    adapter = get_invoice_adapter()
    objects = {str(pk): obj for pk, obj in adapter.get_queryset(ctx.organization_id)
               .in_bulk([i.object_id for i in requests]).items()}
    refused = maps.refused_rows(adapter, ctx.organization_id, [i.object_id for i in requests], objects)
    mappings = maps.mappings_for_objects(adapter, [i.object_id for i in requests], ctx.organization_id, ctx.realm_id)
    outcomes: dict[PushRequest, Outcome] = {}
    for request in requests:
        mapping = mappings.get(request.object_id)
        if request.object_id in refused:
            outcomes[request] = Outcome.failed(refused[request.object_id], code="tenancy")
            continue
        if mapping is None or not mapping.qbo_id:
            outcomes[request] = Outcome.completed("never reached QuickBooks; nothing to void")
            continue
        try:
            current = ctx.client.read("Invoice", mapping.qbo_id)
            if not invoice_rules.is_voided(current):
                current = ctx.client.void("Invoice", mapping.qbo_id, str(current.get("SyncToken", "0")),
                                          request_id=request.idempotency_key)
        except QboApiError as exc:
            outcomes[request] = outcome_for_error(exc)
            continue
        snapshot = dict(mapping.snapshot or {}, total=current.get("TotalAmt"), voided=True)
        with transaction.atomic():
            obj = objects.get(request.object_id)
            if obj is not None:
                apply_payment_state(ctx, adapter, mapping, obj, current, record_version=False)
            maps.record_synced(mapping, current, snapshot, qbo_updated_at=invoice_rules.qbo_updated_at(current),
                               host_updated_at=mapping.host_updated_at, pushed=True)
        outcomes[request] = Outcome.completed(f"voided invoice {mapping.qbo_id}")
    return outcomes
