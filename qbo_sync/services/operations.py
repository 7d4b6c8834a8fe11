"""The changes a person or a system actor asks for, each checked against the one permission rule and recorded.

Every surface (API, ``/qbo/`` pages, admin, command line) calls these instead of the services below them, so none
can skip the rule: :func:`qbo_sync.permissions.require` raises :class:`~qbo_sync.permissions.QboPermissionDenied`
(a 403) before anything is changed. Each change done is appended to the audit log
(:class:`~qbo_sync.models.AuditEntry`: who, through which surface, from which address, on what).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet

from qbo_sync.models import AuditEntry, Conflict, QboConnection, SyncJob
from qbo_sync.permissions import Action, Actor, require
from qbo_sync.services.audit import record

if TYPE_CHECKING:
    from qbo_sync.services.reconcile import Report

A = AuditEntry.Action

__all__ = [
    "cancel_items",
    "cancel_job",
    "complete_connect",
    "disconnect",
    "pause",
    "reconcile",
    "resolve_conflict",
    "resume",
    "retry_items",
    "start_connect",
    "start_import",
    "start_pull",
    "start_push",
    "start_sync",
    "start_targeted_pull",
]


def _org_pk(organization: Any) -> Any:
    return getattr(organization, "pk", organization)


def _require_each(actor: Actor, action: Action, queryset: QuerySet) -> set[Any]:
    org_ids = set(queryset.order_by().values_list("organization_id", flat=True).distinct())
    for org_id in org_ids:
        require(actor, action, org_id)
    return org_ids


def _job_started(actor: Actor, action: str, job: SyncJob) -> SyncJob:
    record(actor, action, job.organization_id, job=job, entity_type=job.entity_type,
           summary=f"{job.get_kind_display()} job {job.pk}: {job.description}"[:500],
           detail={"total": job.total, "options": job.options})
    return job


# --- jobs ---------------------------------------------------------------------------------------------------------


def start_push(actor: Actor, organization: Any, entity: str, ids: Iterable[Any] | None = None) -> SyncJob:
    from qbo_sync.services import jobs

    require(actor, Action.START_SYNC, organization)
    job = jobs.start_push(_org_pk(organization), entity, ids, user=actor.user)
    return _job_started(actor, A.START_PUSH, job)


def start_pull(actor: Actor, organization: Any, entity: str, *, full: bool = False, since: Any = None) -> SyncJob:
    from qbo_sync.services import jobs

    require(actor, Action.START_SYNC, organization)
    job = jobs.start_pull(_org_pk(organization), entity, full=full, since=since, user=actor.user)
    return _job_started(actor, A.START_PULL, job)


def start_sync(actor: Actor, organization: Any) -> list[SyncJob]:
    from qbo_sync.services import jobs

    require(actor, Action.START_SYNC, organization)
    return [_job_started(actor, A.START_SYNC, job) for job in jobs.start_sync(_org_pk(organization), user=actor.user)]


def start_import(actor: Actor, organization: Any) -> list[SyncJob]:
    from qbo_sync.services import jobs

    require(actor, Action.START_SYNC, organization)
    return [_job_started(actor, A.START_IMPORT, job)
            for job in jobs.start_import(_org_pk(organization), user=actor.user)]


def start_targeted_pull(actor: Actor, organization: Any, entity: str, object_ids: list[str]) -> SyncJob:
    from qbo_sync.services import jobs

    require(actor, Action.START_SYNC, organization)
    job = jobs.start_targeted_pull(_org_pk(organization), entity, object_ids, user=actor.user)
    return _job_started(actor, A.START_PULL, job)


def cancel_job(actor: Actor, job: SyncJob) -> int:
    from qbo_sync.services import queue

    require(actor, Action.OPERATE, job.organization_id)
    count = queue.cancel_job(job)
    record(actor, A.CANCEL_JOB, job.organization_id, job=job, entity_type=job.entity_type,
           summary=f"Cancelled job {job.pk} ({count} pending item(s))", detail={"cancelled_items": count})
    return count


def retry_items(actor: Actor, queryset: QuerySet, *, include_dead: bool = False) -> int:
    from qbo_sync.services import queue

    org_ids = _require_each(actor, Action.OPERATE, queryset)
    ids = list(queryset.order_by().values_list("pk", flat=True)[:1000])
    count = queue.retry_items(queryset, include_dead=include_dead)
    for org_id in org_ids:
        record(actor, A.RETRY_ITEMS, org_id, summary=f"Requeued {count} item(s)"
               + (" including dead ones" if include_dead else ""),
               detail={"requeued": count, "include_dead": include_dead, "selected_ids": ids})
    return count


def cancel_items(actor: Actor, queryset: QuerySet) -> int:
    from qbo_sync.services import queue

    org_ids = _require_each(actor, Action.OPERATE, queryset)
    ids = list(queryset.order_by().values_list("pk", flat=True)[:1000])
    count = queue.cancel_items(queryset)
    for org_id in org_ids:
        record(actor, A.CANCEL_ITEMS, org_id, summary=f"Cancelled {count} pending item(s)",
               detail={"cancelled": count, "selected_ids": ids})
    return count


def reconcile(actor: Actor, organization: Any, *, repair: bool = False) -> Report:
    from qbo_sync.services import reconcile as reconcile_service

    require(actor, Action.OPERATE if repair else Action.VIEW, organization)
    report = reconcile_service.reconcile(_org_pk(organization), repair=repair)
    if repair and report.repaired:
        record(actor, A.REPAIR, organization, summary=f"Repaired {len(report.repaired)} drift line(s)",
               detail={"repaired": [str(line) for line in report.repaired][:200]})
    return report


def pause(actor: Actor, organization: Any, reason: str) -> QboConnection:
    from qbo_sync.services import pause as pause_service

    require(actor, Action.OPERATE, organization)
    connection = pause_service.pause(_org_pk(organization), reason, actor.user, surface=actor.surface)
    record(actor, A.PAUSE, organization, summary=f"Sync paused: {connection.pause_reason}")
    return connection


def resume(actor: Actor, organization: Any) -> QboConnection:
    from qbo_sync.services import pause as pause_service

    require(actor, Action.OPERATE, organization)
    was_paused = bool(QboConnection.objects.filter(organization_id=_org_pk(organization))
                      .exclude(paused_at=None).exists())
    connection = pause_service.resume(_org_pk(organization), actor.user, surface=actor.surface)
    if was_paused:
        record(actor, A.RESUME, organization, summary="Sync resumed")
    return connection


# --- conflicts ----------------------------------------------------------------------------------------------------


def _current_host_value(conflict: Conflict) -> Any:
    """The host row's value of the conflict's field right now (what a resolve overwrites), else the value the
    conflict recorded."""
    from qbo_sync.adapters import get_adapter
    from qbo_sync.exceptions import QboSyncError

    try:
        adapter = get_adapter(conflict.entity_type)
        obj = adapter.get_queryset(conflict.organization_id).filter(pk=conflict.mapping.object_id).first()
        if obj is not None:
            values = adapter.to_values(obj)
            if conflict.field in values:
                return values[conflict.field]
    except (QboSyncError, ValueError, TypeError):
        pass
    return conflict.host_value


def resolve_conflict(actor: Actor, conflict: Conflict, keep: str, *, value: Any = None) -> Conflict:
    from qbo_sync.services import conflicts

    require(actor, Action.RESOLVE, conflict.organization_id)
    old = _current_host_value(conflict)
    resolved = conflicts.resolve_conflict(conflict, keep, user=actor.user, value=value)
    record(actor, A.RESOLVE_CONFLICT, resolved.organization_id, entity_type=resolved.entity_type,
           object_id=resolved.mapping.object_id, field=resolved.field, old=old, new=resolved.resolved_value,
           summary=f"Resolved conflict {resolved.pk} on {resolved.entity_type} {resolved.mapping.object_id}."
                   f"{resolved.field}: kept {keep}",
           detail={"conflict": resolved.pk, "keep": keep, "qbo_value": resolved.qbo_value,
                   "qbo_id": resolved.mapping.qbo_id})
    return resolved


# --- the connection -----------------------------------------------------------------------------------------------


def start_connect(actor: Actor, organization: Any) -> str:
    from qbo_sync.services import connect

    require(actor, Action.MANAGE_CONNECTION, organization)
    return connect.start_connect(organization, actor.user)  # recorded when it completes


def complete_connect(actor: Actor, params: Mapping[str, Any]) -> QboConnection:
    """Finish a connect; the actor must still be allowed to manage the organization the ``state`` names."""
    from qbo_sync.services import connect

    connection = connect.complete_connect(params, actor.user,
                                          authorize=lambda org: require(actor, Action.MANAGE_CONNECTION, org))
    record(actor, A.CONNECT, connection.organization_id,
           summary=f"Connected to QuickBooks company {connection.company_name or connection.realm_id}",
           detail={"realm_id": connection.realm_id, "environment": connection.environment})
    return connection


def disconnect(actor: Actor, organization: Any) -> QboConnection | None:
    from qbo_sync.services import connect

    require(actor, Action.MANAGE_CONNECTION, organization)
    connection = connect.disconnect(organization)
    if connection is not None:
        record(actor, A.DISCONNECT, connection.organization_id,
               summary=f"Disconnected from QuickBooks company {connection.company_name or connection.realm_id}",
               detail={"realm_id": connection.realm_id})
    return connection
