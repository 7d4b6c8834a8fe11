"""Starting work: the use cases behind "Sync selected", "Sync now", the import, and their dry-run previews.

Every surface (admin, API, command, schedules) calls these; none writes queue rows itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import models, transaction
from django.db.models import Case, Value, When

from qbo_sync import registry
from qbo_sync.adapters import get_adapter
from qbo_sync.conf import host_label
from qbo_sync.exceptions import QboSyncError
from qbo_sync.mapping import get_mapper
from qbo_sync.mapping.base import MappingError
from qbo_sync.models import EntityMapping, QboConnection, QueueItem, SyncJob
from qbo_sync.services import mappings as maps
from qbo_sync.services import queue
from qbo_sync.services.held import describe as describe_held
from qbo_sync.services.held import held_conflicts
from qbo_sync.services.push import changed_fields

#: What can be pushed and pulled (derived from the entity registry; kept as names for callers).
PUSHABLE = registry.pushable()
PULLABLE = registry.pullable()


class QboInputError(QboSyncError, ValueError):
    """A request the sync cannot carry out as asked (unknown entity or ids, no connection). Nothing was changed."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def require_connection(organization_id: int) -> QboConnection:
    conn = QboConnection.objects.filter(organization_id=organization_id).first()
    if conn is None or conn.status == QboConnection.Status.DISCONNECTED:
        raise QboInputError("This organization is not connected to QuickBooks; connect it first.", "organization")
    return conn


def _check_entity(entity: str, allowed: Sequence[str], direction: str) -> str:
    normalized = registry.lookup(str(entity), allowed)
    if normalized is None:
        raise QboInputError(f"{entity!r} cannot be {direction}ed; choose one of: {', '.join(allowed)}.", "entity")
    return normalized


def resolve_ids(organization_id: int, entity: str, ids: Iterable[Any] | None) -> list[str]:
    """The host ids to act on: the given ones (all must exist in this organization) or every row."""
    qs = get_adapter(entity).get_queryset(organization_id)
    if ids is None:
        return [str(pk) for pk in qs.values_list("pk", flat=True).order_by("pk")]
    wanted = list(dict.fromkeys(str(i) for i in ids))
    if not wanted:
        raise QboInputError("No ids were given.", "ids")
    valid = [i for i in wanted if _valid_pk(qs.model, i)]
    found = {str(pk) for pk in qs.filter(pk__in=valid).values_list("pk", flat=True)} if valid else set()
    missing = [i for i in wanted if i not in found]
    if missing:
        shown = ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
        raise QboInputError(f"No {entity.lower()} with id {shown} in this organization.", "ids")
    return wanted


def _valid_pk(model: type[models.Model], value: str) -> bool:
    """Whether ``value`` can be a primary key of ``model`` at all (PostgreSQL errors on an out-of-range integer)."""
    from django.core.exceptions import ValidationError

    try:
        pk = model._meta.pk.to_python(value)
    except (ValidationError, ValueError, TypeError):
        return False
    return not isinstance(pk, int) or -(2**63) <= pk < 2**63


def start_push(organization_id: int, entity: str, ids: Iterable[Any] | None = None, *, user: Any = None,
               description: str = "") -> SyncJob:
    """One job that pushes the given rows (or all) of ``entity``. Voided sent invoices push their void."""
    entity = _check_entity(entity, PUSHABLE, "push")
    require_connection(organization_id)
    object_ids = resolve_ids(organization_id, entity, ids)
    operation = QueueItem.Operation.PUSH
    job = queue.create_job(organization_id, SyncJob.Kind.PUSH, entity, object_ids, operation, user=user,
                           description=description or f"Push {len(object_ids)} {entity.lower()}(s) to QuickBooks")
    if entity == "Invoice":
        _turn_voids_into_void_items(organization_id, job)
    return job


def _turn_voids_into_void_items(organization_id: int, job: SyncJob) -> None:
    adapter = get_adapter("Invoice")
    ids = list(job.items.values_list("object_id", flat=True))
    void_ids = adapter.void_ids(organization_id, ids)
    if void_ids:
        job.items.filter(object_id__in=void_ids).update(operation=QueueItem.Operation.VOID)


def start_pull(organization_id: int, entity: str, *, full: bool = False, user: Any = None) -> SyncJob:
    entity = _check_entity(entity, PULLABLE, "pull")
    require_connection(organization_id)
    return queue.start_pull(organization_id, entity, full=full, user=user)


def start_targeted_pull(organization_id: int, entity: str, object_ids: list[str], *, user: Any = None) -> SyncJob:
    """One pull job that re-reads the QuickBooks records linked to the given host rows (one pull item each, carrying
    the QuickBooks id, which the pull processor reads by id). Rows never sent to QuickBooks are left out."""
    entity = _check_entity(entity, registry.targeted_pullable(), "pull")
    require_connection(organization_id)
    object_ids = resolve_ids(organization_id, entity, object_ids)
    linked = {oid: m.qbo_id for oid, m in maps.mappings_for_objects(get_adapter(entity), object_ids,
                                                                    organization_id).items() if m.qbo_id}
    ids = [oid for oid in object_ids if oid in linked]
    if not ids:
        raise QboInputError(f"None of these {entity.lower()}s is in QuickBooks yet; sync them first.", "ids")
    with transaction.atomic():  # the drain is kicked on commit, once every item knows its QuickBooks id
        job = queue.create_job(organization_id, SyncJob.Kind.PULL, entity, ids, QueueItem.Operation.PULL, user=user,
                               description=f"Pull {len(ids)} selected {entity.lower()}(s) from QuickBooks",
                               options={"full": False, "targeted": True})
        job.items.update(qbo_id=Case(*[When(object_id=oid, then=Value(linked[oid])) for oid in ids],
                                     default=Value("")))
    return job


def start_import(organization_id: int, *, user: Any = None) -> list[SyncJob]:
    """First import from QuickBooks: every customer and item (linked by natural key first), then payments (every
    pullable entity, dependencies first)."""
    require_connection(organization_id)
    return [queue.start_pull(organization_id, entity, full=True, user=user,
                             description=f"Import {registry.spec(entity).plural.capitalize()}")
            for entity in registry.pullable()]


def start_sync(organization_id: int, *, user: Any = None) -> list[SyncJob]:
    """A whole cycle: pull customers and items, push what the host changed, pull payments (the two-way entities
    are pulled, then pushed; the pull-only ones pulled last)."""
    require_connection(organization_id)
    both = registry.two_way()
    jobs = [queue.start_pull(organization_id, e, user=user) for e in both]
    for entity in both:
        unsynced = unsynced_ids(organization_id, entity)
        if unsynced:
            jobs.append(start_push(organization_id, entity, unsynced, user=user))
    jobs.extend(queue.start_pull(organization_id, e, user=user) for e in registry.pullable() if e not in both)
    return jobs


def unsynced_ids(organization_id: int, entity: str) -> list[str]:
    """Rows never sent, or changed since their last sync (host values differ from the snapshot)."""
    adapter = get_adapter(entity)
    mapper = get_mapper(entity)
    rows = adapter.get_queryset(organization_id)
    mappings = maps.mappings_for_objects(adapter, [str(pk) for pk in rows.values_list("pk", flat=True)],
                                         organization_id)
    held = held_conflicts(m.pk for m in mappings.values())
    result = []
    for obj in rows:
        mapping = mappings.get(str(obj.pk))
        if mapping is None or not mapping.qbo_id or changed_fields(
                mapper.SPEC, adapter.to_values(obj), mapping.snapshot, held.get(mapping.pk, {})):
            result.append(str(obj.pk))
    return result


@dataclass(frozen=True)
class PreviewRow:
    object_id: str
    label: str
    action: str  # create | update | void | held | skip
    reason: str = ""


def preview_push(organization_id: int, entity: str, ids: Iterable[Any] | None = None) -> list[PreviewRow]:
    """What a push would do to each row, without sending anything (the admin's confirmation page, --dry-run)."""
    entity = _check_entity(entity, PUSHABLE, "push")
    object_ids = resolve_ids(organization_id, entity, ids)
    adapter = get_adapter(entity)
    mapper = get_mapper(entity)
    objects = {str(pk): o for pk, o in adapter.get_queryset(organization_id).in_bulk(object_ids).items()}
    mappings = maps.mappings_for_objects(adapter, object_ids, organization_id)
    held = held_conflicts(m.pk for m in mappings.values())
    connection = QboConnection.objects.filter(organization_id=organization_id).first()
    # A configured tax model is checked as the push checks it; "detect" needs QuickBooks, which a preview never asks.
    tax_model, tax_code = connection.sales_tax() if connection is not None else ("detect", "")
    rows = []
    for oid in object_ids:
        obj: models.Model = objects[oid]
        mapping = mappings.get(oid)
        label = str(obj)
        if entity == "Invoice":
            rows.append(_preview_invoice(adapter, mapper, obj, mapping, label, tax_model, tax_code))
        elif mapping is None or not mapping.qbo_id:
            rows.append(PreviewRow(oid, label, "create"))
        else:
            waiting = held.get(mapping.pk, {})
            changed = changed_fields(mapper.SPEC, adapter.to_values(obj), mapping.snapshot, waiting)
            if changed:
                reason = "changed: " + ", ".join(changed) + (f"; {describe_held(waiting)}" if waiting else "")
                rows.append(PreviewRow(oid, label, "update", reason))
            elif waiting:
                rows.append(PreviewRow(oid, label, "held", describe_held(waiting)))
            else:
                rows.append(PreviewRow(oid, label, "skip", "already in step with QuickBooks"))
    return rows


def _preview_invoice(adapter: Any, mapper: Any, obj: models.Model, mapping: EntityMapping | None,
                     label: str, tax_model: str = "detect", tax_code: str = "") -> PreviewRow:
    oid = str(obj.pk)
    sent = mapping is not None and bool(mapping.qbo_id)
    if adapter.is_void(obj):
        if sent and not (mapping.snapshot or {}).get("voided"):
            return PreviewRow(oid, label, "void", f"voided in {host_label()}")
        return PreviewRow(oid, label, "skip", "void" + (" in QuickBooks already" if sent else " and never sent"))
    if sent:
        return PreviewRow(oid, label, "skip", f"already in QuickBooks as invoice {mapping.qbo_id}")
    values = adapter.to_values(obj)
    # Dependencies resolve at push time; check the rest now.
    values["customer_qbo_id"] = "pending"
    for line in values["lines"]:
        line["item_qbo_id"] = "pending"
    try:
        issues = mapper.validate(values, tax_model=tax_model, tax_code=tax_code)
    except MappingError as exc:
        return PreviewRow(oid, label, "skip", f"invalid: {exc}")
    if issues:
        return PreviewRow(oid, label, "skip", "invalid: " + "; ".join(str(i) for i in issues))
    return PreviewRow(oid, label, "create")
