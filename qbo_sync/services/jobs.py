"""Starting work: the use cases behind "Sync selected", "Sync now", the import, and their dry-run previews.

Every surface (admin, API, command, schedules) calls these; none writes queue rows itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import models, transaction
from django.db.models import Case, Value, When

from qbo_sync import registry
from qbo_sync.adapters import get_adapter, get_invoice_adapter
from qbo_sync.client import quote_value
from qbo_sync.exceptions import QboSyncError
from qbo_sync.models import EntityMapping, QboConnection, QueueItem, SyncJob
from qbo_sync.services import queue
from qbo_sync.services.plans import (
    PullPlan,
    PushPlan,
    RowPlan,
    TargetedPullPlan,
    plan_pull,
    plan_push,
    plan_targeted_pull,
)

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
    ids = list(job.items.values_list("object_id", flat=True))
    void_ids = get_invoice_adapter().void_ids(organization_id, ids)
    if void_ids:
        job.items.filter(object_id__in=void_ids).update(operation=QueueItem.Operation.VOID)


def start_pull(organization_id: int, entity: str, *, full: bool = False, since: dt.datetime | None = None,
               user: Any = None) -> SyncJob:
    """One pull job of ``entity`` (or the one still pending or running): changes since the cursor, everything
    (``full``), or changes since ``since`` (read from then once; the cursor moves on as after any pull)."""
    entity = _check_entity(entity, PULLABLE, "pull")
    require_connection(organization_id)
    return queue.start_pull(organization_id, entity, full=full, since=since, user=user)


def start_targeted_pull(organization_id: int, entity: str, object_ids: list[str], *, user: Any = None) -> SyncJob:
    """One pull job that re-reads the QuickBooks records linked to the given host rows (one pull item each, carrying
    the QuickBooks id, which the pull processor reads by id). Rows never sent to QuickBooks are left out."""
    entity = _check_entity(entity, registry.targeted_pullable(), "pull")
    require_connection(organization_id)
    object_ids = resolve_ids(organization_id, entity, object_ids)
    linked = {p.object_id: p.qbo_id for p in plan_targeted_pull(organization_id, entity, object_ids) if p.todo}
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
    """Rows a push has work for (:func:`~qbo_sync.services.plans.plan_push`): never sent, or changed since their
    last sync."""
    ids = [str(pk) for pk in get_adapter(entity).get_queryset(organization_id).values_list("pk", flat=True)]
    return [p.object_id for p in plan_push(organization_id, entity, ids) if p.todo]


#: A preview row: the plan of one row as every preview shows it (object id, label, action, reason).
PreviewRow = RowPlan


def preview_push(organization_id: int, entity: str, ids: Iterable[Any] | None = None) -> list[PushPlan]:
    """What a push would do to each row, without sending anything (the admin's confirmation page, the API's and
    the command's dry run): the plans the push itself acts on."""
    entity = _check_entity(entity, PUSHABLE, "push")
    return plan_push(organization_id, entity, resolve_ids(organization_id, entity, ids))


def preview_targeted_pull(organization_id: int, entity: str, ids: Iterable[Any]) -> list[TargetedPullPlan]:
    """What "pull selected" does to each row (the admin's confirmation page): the plans the job itself follows."""
    entity = _check_entity(entity, registry.targeted_pullable(), "pull")
    return plan_targeted_pull(organization_id, entity, resolve_ids(organization_id, entity, ids))


def preview_pull(organization_id: int, entity: str, *, full: bool = False, since: dt.datetime | None = None,
                 count: bool = True, client: Any = None) -> tuple[PullPlan, dict[str, int]]:
    """What a pull would read: its plan (the window the pull itself uses) and, with ``count``, how many records
    QuickBooks has in it, one COUNT query per entity read (a full payment pull re-reads the invoices we sent:
    counted here)."""
    entity = _check_entity(entity, PULLABLE, "pull")
    conn = require_connection(organization_id)
    plan = plan_pull(organization_id, entity, full=full, since=since)
    if not count:
        return plan, {}
    if client is None:
        from qbo_sync.services.connect import client_for

        client = client_for(conn)
    counts: dict[str, int] = {}
    if plan.reads != (entity,) and plan.full:  # a full payment pull re-reads the invoices we sent
        counts[plan.reads[0]] = EntityMapping.objects.filter(
            organization_id=organization_id, entity_type=plan.reads[0], realm_id=conn.realm_id,
            qbo_id__isnull=False).exclude(qbo_id="").count()
        return plan, counts
    for name in plan.reads:
        where = ["Active IN (true, false)"] if name in registry.name_lists() else []
        if plan.read_from is not None:
            where.append(f"MetaData.LastUpdatedTime >= {quote_value(plan.read_from)}")
        counts[name] = client.count(name, " AND ".join(where) or None)
    return plan, counts
