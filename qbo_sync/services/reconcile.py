"""Reconciliation: do the host's books and QuickBooks' books match for one organization?

``reconcile(organization_id)`` reads every customer, item and invoice of the realm from QuickBooks (paginated
queries, inactive records included) and compares them with the host rows and their mappings:

* every synced invoice exists exactly once in QuickBooks (by DocNumber), under the linked Id, with the same total
  before tax (``total_differs``) and, when the host keeps the tax QuickBooks charged, the same tax
  (``tax_differs``: QuickBooks decides the tax, so a repull writes its figure back);
* every QuickBooks invoice whose DocNumber is one of the host's maps back to that host invoice;
* a voided host invoice is voided in QuickBooks;
* the payment state of each synced invoice (amount due; paid / partly paid / open) matches QuickBooks' Balance (tax
  included);
* linked customers and items agree on every synced field, or the difference is an open conflict, or a queued push
  is still on its way; a held field (its conflict is open, see :mod:`qbo_sync.services.held`) is listed under
  ``held`` as covered by that conflict, not as drift;
* host customers and items all have a twin, and every QuickBooks customer and item has one in the host;
* counts and money totals per entity on both sides.

Work still in the queue (pending or being processed) is "in flight", not drift: reconcile after the queue drained
for a verdict. Each drift line carries one repair (``requeue_push``, ``relink``, ``repull``, ``void_duplicate``)
or ``manual`` when a person must decide; ``repair(report)`` (or ``reconcile(..., repair=True)``) applies them.
Repairs only *queue* pushes and pulls or relink mappings; the next drain does the rest, and a second reconcile
confirms.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from qbo_sync import registry
from qbo_sync.adapters import get_adapter, get_invoice_adapter
from qbo_sync.conf import host_label
from qbo_sync.exceptions import QboApiError
from qbo_sync.mapping import Mapper, get_mapper
from qbo_sync.mapping import invoices as invoice_rules
from qbo_sync.mapping import payments as payment_rules
from qbo_sync.mapping.base import EntitySpec, MappingError, money, values_equal
from qbo_sync.models import Conflict, EntityMapping, QueueItem, SyncLog
from qbo_sync.services import mappings as maps
from qbo_sync.services.context import SyncContext
from qbo_sync.services.held import held_conflicts

logger = logging.getLogger(__name__)

#: Name lists are compared row by row through the natural key (the registry's name lists).
NAME_ENTITIES = registry.name_lists()
IN_FLIGHT = (QueueItem.Status.PENDING, QueueItem.Status.PROCESSING)
#: The payment state fields compared when the host invoice has them (the keys of ``payments.payment_state``).
OPEN_STATES = {"open", "overdue"}
#: Balance 0: which of these it is depends on the payments' lines and refunds, which reconciliation does not read.
SETTLED_STATES = {"paid", "credited", "refunded"}

REPAIRS = {
    "requeue_push": "queue a push of the host row",
    "relink": "link the host row to the QuickBooks record that already exists",
    "repull": "re-read the QuickBooks record and merge it (three-way) into the host",
    "void_duplicate": "void the extra QuickBooks copies (no payment applied)",
    "manual": "needs a person",
}


@dataclass
class Drift:
    kind: str
    entity: str
    object_id: str
    qbo_id: str
    message: str
    repair: str
    detail: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        ref = f"{host_label(capital=True)} {self.object_id or '-'} / QBO {self.qbo_id or '-'}"
        return f"{self.entity} {ref}: {self.kind}: {self.message} -> repair: {self.repair} ({REPAIRS[self.repair]})"


@dataclass
class Report:
    organization_id: int
    realm_id: str
    checked_at: dt.datetime
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    totals: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    drift: list[Drift] = field(default_factory=list)
    in_flight: int = 0
    open_conflicts: int = 0
    #: Fields held by an open conflict: covered by it, not drift (``Customer 5 email: held by open conflict #3 ...``).
    held: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def books_match(self) -> bool:
        return not self.drift

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["books_match"] = self.books_match
        data["checked_at"] = self.checked_at.isoformat()
        data["totals"] = {e: {k: str(v) for k, v in t.items()} for e, t in self.totals.items()}
        data["drift"] = [dict(asdict(d), line=d.line()) for d in self.drift]
        return data

    def lines(self) -> list[str]:
        return [d.line() for d in self.drift]


# --- reading ------------------------------------------------------------------------------------------------------


def _qbo_rows(ctx: SyncContext, entity: str) -> list[dict[str, Any]]:
    where = " WHERE Active IN (true, false)" if entity in NAME_ENTITIES else ""
    return list(ctx.client.query_all(f"SELECT * FROM {entity}{where} ORDERBY Id"))  # noqa: S608


def _in_flight(organization_id: int) -> dict[tuple[str, str], int]:
    rows = (QueueItem.objects.filter(organization_id=organization_id, status__in=IN_FLIGHT)
            .values_list("entity_type", "object_id"))
    return Counter(rows)


def reconcile(organization_id: int, *, repair: bool = False) -> Report:
    """Compare the organization's books on both sides; with ``repair`` apply each drift line's repair."""
    import time

    started = time.monotonic()
    ctx = SyncContext.for_organization(organization_id)
    report = Report(organization_id=organization_id, realm_id=ctx.realm_id, checked_at=timezone.now())
    flying = _in_flight(organization_id)
    report.in_flight = sum(flying.values())
    report.open_conflicts = Conflict.objects.filter(organization_id=organization_id,
                                                    state=Conflict.State.OPEN).count()
    try:
        for entity in NAME_ENTITIES:
            _check_names(ctx, entity, report, flying)
        _check_invoices(ctx, report, flying)
    finally:
        ctx.client.close()
    report.seconds = round(time.monotonic() - started, 2)
    if repair and report.drift:
        report.repaired = apply_repairs(report)
    return report


def _unlinked_by_natural_key(mapper: Mapper, rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """QBO records no host row is linked to, by each of their natural keys: the entity's one definition
    (``SPEC.natural_keys``), the same a pull links by, so "unlinked" here is what the next pull would link."""
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        try:
            values = mapper.from_qbo(row)
        except MappingError:
            continue
        for key in mapper.SPEC.natural_key_values(values).items():
            by_key.setdefault(key, row)
    return by_key


def _name_of(spec: EntitySpec, row: dict[str, Any]) -> Any:
    key = spec.unique_key
    return row.get(key.qbo_property) if key is not None else row.get("Id")


def _check_names(ctx: SyncContext, entity: str, report: Report, flying: dict[tuple[str, str], int]) -> None:
    adapter = get_adapter(entity)
    mapper = get_mapper(entity)
    spec = mapper.SPEC
    qbo = {str(r["Id"]): r for r in _qbo_rows(ctx, entity)}
    hosts = {str(o.pk): o for o in adapter.get_queryset(ctx.organization_id)}
    mappings = maps.mappings_for_objects(adapter, hosts, ctx.organization_id, ctx.realm_id)
    linked_qbo = {m.qbo_id: m for m in mappings.values() if m.qbo_id}
    open_fields = held_conflicts(m.pk for m in mappings.values())
    qbo_by_key = _unlinked_by_natural_key(mapper, [r for qid, r in qbo.items() if qid not in linked_qbo])
    report.counts[entity] = {"host": len(hosts), "qbo": len(qbo), "linked": len(linked_qbo)}
    for oid, obj in hosts.items():
        mapping = mappings.get(oid)
        busy = flying.get((entity, oid), 0) > 0
        values = adapter.to_values(obj)
        if mapping is None or not mapping.qbo_id:
            if busy:
                continue
            twin = next((qbo_by_key[k] for k in spec.natural_key_values(values).items() if k in qbo_by_key), None)
            if twin is not None:
                report.drift.append(Drift("unlinked", entity, oid, str(twin["Id"]),
                                          f"{obj} exists in QuickBooks but is not linked", "relink"))
            else:
                report.drift.append(Drift("not_in_qbo", entity, oid, "", f"{obj} is not in QuickBooks",
                                          "requeue_push"))
            continue
        row = qbo.get(mapping.qbo_id)
        if row is None:
            report.drift.append(Drift("missing_in_qbo", entity, oid, mapping.qbo_id,
                                      f"{obj} is linked to a record QuickBooks does not have", "manual"))
            continue
        if busy:
            continue
        try:
            theirs = mapper.from_qbo(row)
        except MappingError as exc:
            report.drift.append(Drift("unreadable", entity, oid, mapping.qbo_id, str(exc), "manual"))
            continue
        held = open_fields.get(mapping.pk, {})
        report.held.extend(f"{entity} {oid} {name}: held by open conflict #{c.pk} (host {values.get(name)!r} / "
                           f"QBO {theirs.get(name)!r})" for name, c in sorted(held.items()))
        differ = [f for f in spec.fields if f in values and f in theirs and f not in held
                  and not values_equal(spec, f, values[f], theirs[f])]
        if differ:
            report.drift.append(Drift(
                "fields_differ", entity, oid, mapping.qbo_id,
                f"{obj}: " + ", ".join(f"{f} {host_label()} {values[f]!r} / QBO {theirs[f]!r}" for f in differ),
                "repull", {"fields": differ}))
    for qbo_id, row in qbo.items():
        if qbo_id not in linked_qbo:
            if EntityMapping.objects.filter(realm_id=ctx.realm_id, entity_type=entity, qbo_id=qbo_id).exists():
                continue  # linked to a row of another organization sharing the realm: not ours to judge
            report.drift.append(Drift("not_in_host", entity, "", qbo_id,
                                      f"QuickBooks {entity.lower()} {_name_of(spec, row)!r} has no twin in "
                                      + host_label(),
                                      "repull"))


def _check_invoices(ctx: SyncContext, report: Report, flying: dict[tuple[str, str], int]) -> None:
    adapter = get_invoice_adapter()
    qbo_rows = _qbo_rows(ctx, "Invoice")
    qbo = {str(r["Id"]): r for r in qbo_rows}
    by_number: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in qbo_rows:
        by_number[str(row.get("DocNumber") or "")].append(row)
    hosts = {str(o.pk): o for o in adapter.get_queryset(ctx.organization_id)}
    mappings = maps.mappings_for_objects(adapter, hosts, ctx.organization_id, ctx.realm_id)
    numbers: dict[str, str] = {}
    totals = {"host_total": Decimal("0.00"), "qbo_total": Decimal("0.00"),
              "host_due": Decimal("0.00"), "qbo_balance": Decimal("0.00")}
    synced = 0
    for oid, obj in hosts.items():
        values = adapter.to_values(obj)
        number = str(values["doc_number"])
        numbers[number] = oid
        mapping = mappings.get(oid)
        copies = by_number.get(number, [])
        busy = flying.get(("Invoice", oid), 0) > 0
        if mapping is None or not mapping.qbo_id:
            if busy:
                continue
            if copies:
                report.drift.append(Drift("unlinked", "Invoice", oid, str(copies[0]["Id"]),
                                          f"invoice {number} is in QuickBooks but not linked", "relink"))
            elif mapping is not None and mapping.last_pushed_at is not None:
                report.drift.append(Drift("not_in_qbo", "Invoice", oid, "",
                                          f"invoice {number} was sent but is not in QuickBooks"
                                          + (f" ({mapping.last_error})" if mapping.last_error else ""),
                                          "requeue_push"))
            continue
        synced += 1
        current = qbo.get(mapping.qbo_id)
        # A voided extra copy is how a duplicate is resolved: only live extra copies count.
        extra = [str(c["Id"]) for c in copies if str(c["Id"]) != mapping.qbo_id and not _voided(c)]
        if extra:
            report.drift.append(Drift("duplicate_in_qbo", "Invoice", oid, mapping.qbo_id,
                                      f"invoice {number} is in QuickBooks {len(extra) + 1} times (extra: "
                                      f"{', '.join(extra)})", "void_duplicate", {"extra": extra}))
        if current is None:
            report.drift.append(Drift("missing_in_qbo", "Invoice", oid, mapping.qbo_id,
                                      f"invoice {number} is linked to QuickBooks invoice {mapping.qbo_id}, which "
                                      "is not there (deleted?)", "manual"))
            continue
        if str(current.get("DocNumber") or "") != number:
            report.drift.append(Drift("wrong_link", "Invoice", oid, mapping.qbo_id,
                                      f"invoice {number} is linked to QuickBooks invoice {mapping.qbo_id}, whose "
                                      f"DocNumber is {current.get('DocNumber')!r}", "manual"))
            continue
        try:
            qbo_void = invoice_rules.is_voided(current)
            qbo_total = money(current.get("TotalAmt", 0), field_name="TotalAmt")
            qbo_tax = invoice_rules.tax_amount(current)
            state = payment_rules.payment_state(current, None, ctx.today)
        except MappingError as exc:
            report.drift.append(Drift("unreadable", "Invoice", oid, mapping.qbo_id, str(exc), "manual"))
            continue
        host_void = adapter.is_void(obj)
        totals["qbo_total"] += qbo_total
        totals["qbo_balance"] += state["amount_due"]
        held = adapter.payment_state(obj)  # through the adapter: the host's columns may have any name
        host_tax = money(held["tax_amount"]) if held and held.get("tax_amount") is not None else None
        totals["host_total"] += Decimal("0.00") if host_void else money(values["total"]) + (host_tax or 0)
        host_due = held["amount_due"] if held else None
        if host_due is not None:
            totals["host_due"] += money(host_due)
        if host_void != qbo_void:
            if host_void and not busy:
                report.drift.append(Drift("void_not_in_qbo", "Invoice", oid, mapping.qbo_id,
                                          f"invoice {number} is void in {host_label()}, not in QuickBooks",
                                          "requeue_push"))
            elif not host_void:
                report.drift.append(Drift("voided_in_qbo", "Invoice", oid, mapping.qbo_id,
                                          f"invoice {number} was voided in QuickBooks, not in {host_label()}",
                                          "manual"))
            continue
        if host_void:
            continue
        # The host's total is what it billed before tax; QuickBooks' TotalAmt adds the tax it decided.
        if money(values["total"]) != qbo_total - qbo_tax:
            report.drift.append(Drift("total_differs", "Invoice", oid, mapping.qbo_id,
                                      f"invoice {number}: total before tax {host_label()} {money(values['total'])} "
                                      f"/ QBO {qbo_total - qbo_tax}",
                                      "manual"))
        elif host_tax is not None and host_tax != qbo_tax:
            report.drift.append(Drift("tax_differs", "Invoice", oid, mapping.qbo_id,
                                      f"invoice {number}: sales tax {host_label()} {host_tax} / QBO {qbo_tax} "
                                      f"(QBO total {qbo_total})", "repull"))
        host_status = held["payment_status"] if held else None
        if host_due is None or host_status is None:
            continue  # the host keeps no payment state
        same_status = (host_status == state["payment_status"]
                       or (host_status in OPEN_STATES and state["payment_status"] in OPEN_STATES)
                       or (host_status in SETTLED_STATES and state["payment_status"] in SETTLED_STATES))
        if money(host_due) != state["amount_due"] or not same_status:
            report.drift.append(Drift("payment_differs", "Invoice", oid, mapping.qbo_id,
                                      f"invoice {number}: {host_label()} {host_status} due {money(host_due)} / QBO "
                                      f"{state['payment_status']} balance {state['amount_due']}", "repull"))
    report.counts["Invoice"] = {"host": len(hosts), "qbo": len(qbo), "linked": synced,
                                "qbo_from_host": sum(1 for r in qbo_rows
                                                        if str(r.get("DocNumber") or "") in numbers)}
    report.totals["Invoice"] = totals


def _voided(row: dict[str, Any]) -> bool:
    try:
        return invoice_rules.is_voided(row)
    except MappingError:
        return False


# --- repairs ------------------------------------------------------------------------------------------------------


def repair(report: Report) -> list[str]:
    """Apply the repair of every drift line of ``report`` (see :data:`REPAIRS`); returns what was done."""
    return apply_repairs(report)


def apply_repairs(report: Report) -> list[str]:
    from qbo_sync.services.queue import enqueue, start_repull

    done: list[str] = []
    org = report.organization_id
    pushes: dict[str, list[str]] = defaultdict(list)
    repulls: dict[str, list[Drift]] = defaultdict(list)
    for d in report.drift:
        if d.repair == "requeue_push":
            pushes[d.entity].append(d.object_id)
        elif d.repair == "repull":
            repulls[d.entity].append(d)
        elif d.repair == "relink":
            done.append(_relink(report, d))
    ctx = None
    try:
        if any(d.repair == "void_duplicate" for d in report.drift):
            ctx = SyncContext.for_organization(org)
        for d in report.drift:
            if d.repair == "void_duplicate" and ctx is not None:
                done.extend(_void_duplicates(ctx, d))
        for entity, lines in repulls.items():
            known = [d for d in lines if d.object_id]
            if known:
                # Forget the version we think we have, so the pull merges the record again instead of skipping it.
                maps.forget_versions(org, report.realm_id, entity, [d.qbo_id for d in known])
            # Read by id and applied by the next drain (the pull processor), like any other pull.
            job = start_repull(org, entity, [d.qbo_id for d in lines])
            done.append(f"queued a re-pull of {job.total} {entity.lower()}(s) (job {job.pk})")
    finally:
        if ctx is not None:
            ctx.client.close()
    for entity, ids in pushes.items():
        void_ids: list[str] = []
        if entity == "Invoice":
            void_ids = get_invoice_adapter().void_ids(org, ids)
            if void_ids:
                enqueue(org, entity, void_ids, QueueItem.Operation.VOID)
        enqueue(org, entity, [i for i in ids if i not in void_ids], QueueItem.Operation.PUSH)
        done.append(f"queued {len(ids)} {entity.lower()} push(es)")
    maps.log(org, "reconcile_repair", "Reconciliation repairs: " + ("; ".join(done) or "nothing to do"),
             level=SyncLog.Level.WARNING if done else SyncLog.Level.INFO)
    return done


def _relink(report: Report, d: Drift) -> str:
    adapter = get_adapter(d.entity)
    obj = adapter.get_queryset(report.organization_id).filter(pk=d.object_id).first()
    if obj is None:
        return f"{d.entity} {d.object_id}: gone; not relinked"
    with transaction.atomic():
        if EntityMapping.objects.filter(realm_id=report.realm_id, entity_type=d.entity, qbo_id=d.qbo_id).exists():
            return f"{d.entity} {d.object_id}: QuickBooks {d.qbo_id} is linked to another row; not relinked"
        mapping = maps.mappings_for_objects(adapter, [d.object_id], report.organization_id, report.realm_id).get(
            d.object_id) or maps.new_mapping(
            adapter, obj, report.organization_id, report.realm_id)
        # A link with no base: the next push of the row looks up the record by its natural key and merges.
        maps.mark_for_relink(mapping)
    from qbo_sync.services.queue import enqueue

    enqueue(report.organization_id, d.entity, [d.object_id], QueueItem.Operation.PUSH)
    return f"{d.entity} {d.object_id}: queued a push that links it to QuickBooks {d.qbo_id}"


def _void_duplicates(ctx: SyncContext, d: Drift) -> list[str]:
    done = []
    for qbo_id in d.detail.get("extra", []):
        try:
            row = ctx.client.read("Invoice", qbo_id)
            if money(row.get("Balance", 0)) != money(row.get("TotalAmt", 0)):
                done.append(f"invoice QBO {qbo_id}: has payments; left for a person")
                continue
            ctx.client.void("Invoice", qbo_id, str(row.get("SyncToken", "0")),
                            request_id=f"reconcile-void-{ctx.realm_id}-{qbo_id}"[:50])
            done.append(f"voided duplicate QuickBooks invoice {qbo_id}")
        except QboApiError as exc:
            done.append(f"invoice QBO {qbo_id}: void failed: {exc}")
    return done


def reconcile_all(organization_ids: Iterable[int] | None = None, *, repair: bool = False) -> list[Report]:
    """Reconcile every connected organization that is not paused (the nightly schedule)."""
    from qbo_sync.models import QboConnection

    qs = QboConnection.objects.filter(status=QboConnection.Status.CONNECTED, paused_at__isnull=True)
    if organization_ids is not None:
        qs = qs.filter(organization_id__in=list(organization_ids))
    reports = []
    for org_id in qs.values_list("organization_id", flat=True):
        try:
            rep = reconcile(org_id, repair=repair)
        except QboApiError as exc:
            maps.log(org_id, "reconcile_failed", f"Reconciliation could not read QuickBooks: {exc}",
                     level=SyncLog.Level.ERROR)
            continue
        maps.log(org_id, "reconciled", "Books match" if rep.books_match else
                 f"Reconciliation found {len(rep.drift)} drift line(s): " + "; ".join(rep.lines()[:20]),
                 level=SyncLog.Level.INFO if rep.books_match else SyncLog.Level.WARNING,
                 drift=len(rep.drift), in_flight=rep.in_flight)
        reports.append(rep)
    return reports
