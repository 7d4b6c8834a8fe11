"""The changes a person or a system actor asks for, each checked against the one permission rule.

Every surface (API, ``/qbo/`` pages, admin, command line, schedules, webhooks) calls these instead of the services
below them, so none can skip the rule: :func:`qbo_sync.permissions.require` raises
:class:`~qbo_sync.permissions.QboPermissionDenied` (a 403) before anything is changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db.models import QuerySet

from qbo_sync.models import Conflict, SyncJob
from qbo_sync.permissions import Action, Actor, require

__all__ = [
    "cancel_items",
    "cancel_job",
    "complete_connect",
    "disconnect",
    "reconcile",
    "resolve_conflict",
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


def _require_each(actor: Actor, action: Action, queryset: QuerySet) -> None:
    for org_id in set(queryset.order_by().values_list("organization_id", flat=True).distinct()):
        require(actor, action, org_id)


# --- jobs ---------------------------------------------------------------------------------------------------------


def start_push(actor: Actor, organization: Any, entity: str, ids: Iterable[Any] | None = None) -> SyncJob:
    from qbo_sync.services import jobs

    require(actor, Action.START_SYNC, organization)
    return jobs.start_push(_org_pk(organization), entity, ids, user=actor.user)


def start_pull(actor: Actor, organization: Any, entity: str, *, full: bool = False) -> SyncJob:
    from qbo_sync.services import jobs

    require(actor, Action.START_SYNC, organization)
    return jobs.start_pull(_org_pk(organization), entity, full=full, user=actor.user)


def start_sync(actor: Actor, organization: Any) -> list[SyncJob]:
    from qbo_sync.services import jobs

    require(actor, Action.START_SYNC, organization)
    return jobs.start_sync(_org_pk(organization), user=actor.user)


def start_import(actor: Actor, organization: Any) -> list[SyncJob]:
    from qbo_sync.services import jobs

    require(actor, Action.START_SYNC, organization)
    return jobs.start_import(_org_pk(organization), user=actor.user)


def start_targeted_pull(actor: Actor, organization: Any, entity: str, object_ids: list[str]) -> SyncJob:
    from qbo_sync.services import jobs

    require(actor, Action.START_SYNC, organization)
    return jobs.start_targeted_pull(_org_pk(organization), entity, object_ids, user=actor.user)


def cancel_job(actor: Actor, job: SyncJob) -> int:
    from qbo_sync.services import queue

    require(actor, Action.OPERATE, job.organization_id)
    return queue.cancel_job(job)


def retry_items(actor: Actor, queryset: QuerySet, *, include_dead: bool = False) -> int:
    from qbo_sync.services import queue

    _require_each(actor, Action.OPERATE, queryset)
    return queue.retry_items(queryset, include_dead=include_dead)


def cancel_items(actor: Actor, queryset: QuerySet) -> int:
    from qbo_sync.services import queue

    _require_each(actor, Action.OPERATE, queryset)
    return queue.cancel_items(queryset)


def reconcile(actor: Actor, organization: Any, *, repair: bool = False) -> Any:
    from qbo_sync.services import reconcile as reconcile_service

    require(actor, Action.OPERATE if repair else Action.VIEW, organization)
    return reconcile_service.reconcile(_org_pk(organization), repair=repair)


# --- conflicts ----------------------------------------------------------------------------------------------------


def resolve_conflict(actor: Actor, conflict: Conflict, keep: str, *, value: Any = None) -> Conflict:
    from qbo_sync.services import conflicts

    require(actor, Action.RESOLVE, conflict.organization_id)
    return conflicts.resolve_conflict(conflict, keep, user=actor.user, value=value)


# --- the connection -----------------------------------------------------------------------------------------------


def start_connect(actor: Actor, organization: Any) -> str:
    from qbo_sync.services import connect

    require(actor, Action.MANAGE_CONNECTION, organization)
    return connect.start_connect(organization, actor.user)


def complete_connect(actor: Actor, params: Mapping[str, Any]) -> Any:
    """Finish a connect; the actor must still be allowed to manage the organization the ``state`` names."""
    from qbo_sync.services import connect

    return connect.complete_connect(params, actor.user,
                                    authorize=lambda org: require(actor, Action.MANAGE_CONNECTION, org))


def disconnect(actor: Actor, organization: Any) -> Any:
    from qbo_sync.services import connect

    require(actor, Action.MANAGE_CONNECTION, organization)
    return connect.disconnect(organization)
