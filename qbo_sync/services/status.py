"""One record's sync state (the badge next to an invoice) and an organization's overview (dashboard, `status`)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, TypedDict

from django.db.models import Count

from qbo_sync import registry
from qbo_sync.adapters import get_adapter
from qbo_sync.conf import qbo_settings
from qbo_sync.models import Conflict, EntityMapping, PullCursor, QboConnection, QueueItem, SyncJob
from qbo_sync.services import mappings as maps
from qbo_sync.services.progress import queue_counts

#: A record's sync state, as its badge shows it.
State = Literal["conflict", "pending", "failed", "synced", "not_synced"]


class RecordStatus(TypedDict):
    """One record's sync state in full (the API's record status)."""

    entity: str
    id: str
    state: State
    qbo_id: str | None
    #: "" where QuickBooks has no page a person could open (see :func:`qbo_url`)
    qbo_url: str
    sync_token: str | None
    last_pushed_at: dt.datetime | None
    last_pulled_at: dt.datetime | None
    error: str
    open_conflicts: int


class Badge(TypedDict):
    """One row's sync state on a list page (:func:`states_for`)."""

    state: State
    message: str
    qbo_id: str | None
    qbo_url: str


def qbo_url(entity: str, qbo_id: str | None) -> str:
    """A link to the record in QuickBooks' own pages (production and Intuit's sandbox), or ``""`` where there is no
    page a person could open: the bundled sandbox (``local``) serves only the API, so callers show the id alone."""
    if not qbo_id:
        return ""
    env = qbo_settings.ENVIRONMENT
    host = {"production": "https://app.qbo.intuit.com", "sandbox": "https://app.sandbox.qbo.intuit.com"}.get(env)
    if host is None:
        return ""
    page = registry.spec(entity).qbo_page
    return f"{host}/app/{page}{qbo_id}" if page else ""


def record_status(organization_id: int, entity: str, object_id: str) -> RecordStatus:
    adapter = get_adapter(entity)
    mapping = maps.mappings_for_objects(adapter, [object_id], organization_id).get(str(object_id))
    item = (QueueItem.objects.filter(organization_id=organization_id, entity_type=entity, object_id=str(object_id))
            .order_by("-updated_at").first())
    open_conflicts = Conflict.objects.filter(mapping=mapping, state=Conflict.State.OPEN).count() if mapping else 0
    state: State
    if open_conflicts:
        state = "conflict"
    elif item is not None and item.status in (QueueItem.Status.PENDING, QueueItem.Status.PROCESSING):
        state = "pending"
    elif item is not None and item.status in (QueueItem.Status.FAILED, QueueItem.Status.DEAD):
        state = "failed"
    elif mapping is not None and mapping.qbo_id:
        state = "synced" if mapping.state != EntityMapping.State.FAILED else "failed"
    else:
        state = "not_synced"
    return RecordStatus({
        "entity": entity,
        "id": str(object_id),
        "state": state,
        "qbo_id": mapping.qbo_id if mapping else None,
        "qbo_url": qbo_url(entity, mapping.qbo_id if mapping else None),
        "sync_token": mapping.sync_token if mapping else None,
        "last_pushed_at": mapping.last_pushed_at if mapping else None,
        "last_pulled_at": mapping.last_pulled_at if mapping else None,
        "error": (item.last_error if item is not None and state == "failed" else
                  (mapping.last_error if mapping else "")),
        "open_conflicts": open_conflicts,
    })


def states_for(organization_id: int, entity: str, object_ids: list[str]) -> dict[str, Badge]:
    """Badges for a page of rows in a constant number of queries (admin list pages)."""
    adapter = get_adapter(entity)
    mappings = maps.mappings_for_objects(adapter, object_ids, organization_id)
    active = dict(QueueItem.objects.filter(organization_id=organization_id, entity_type=entity,
                                           object_id__in=object_ids,
                                           status__in=[QueueItem.Status.PENDING, QueueItem.Status.PROCESSING])
                  .values_list("object_id", "status"))
    failed = dict(QueueItem.objects.filter(organization_id=organization_id, entity_type=entity,
                                           object_id__in=object_ids,
                                           status__in=[QueueItem.Status.FAILED, QueueItem.Status.DEAD])
                  .values_list("object_id", "last_error"))
    conflicted = set(Conflict.objects.filter(mapping__in=list(mappings.values()), state=Conflict.State.OPEN)
                     .values_list("mapping__object_id", flat=True))
    result: dict[str, Badge] = {}
    for oid in object_ids:
        m = mappings.get(oid)
        state: State
        if oid in conflicted:
            state, message = "conflict", ""
        elif oid in active:
            state, message = "pending", ""
        elif m is not None and m.state == EntityMapping.State.FAILED:
            state, message = "failed", m.last_error
        elif oid in failed and not (m and m.qbo_id and m.state == EntityMapping.State.SYNCED):
            state, message = "failed", failed[oid]
        elif m is not None and m.qbo_id:
            state, message = "synced", ""
        else:
            state, message = "not_synced", ""
        result[oid] = Badge(state=state, message=message, qbo_id=m.qbo_id if m else None,
                            qbo_url=qbo_url(entity, m.qbo_id if m else None))
    return result


def organization_overview(organization_id: int) -> dict[str, Any]:
    conn = QboConnection.objects.filter(organization_id=organization_id).first()
    cursors = {c.entity_type: {"last_success_at": c.last_success_at, "changed_since": c.changed_since}
               for c in PullCursor.objects.filter(organization_id=organization_id)}
    last_jobs: dict[str, dict[str, Any]] = {}
    for job in SyncJob.objects.filter(organization_id=organization_id).order_by("-created_at")[:50]:
        last_jobs.setdefault(f"{job.kind}:{job.entity_type}", {"id": job.pk, "state": job.state,
                                                               "created_at": job.created_at,
                                                               "finished_at": job.finished_at})
    conflicts = dict(Conflict.objects.filter(organization_id=organization_id).values_list("state")
                     .annotate(n=Count("pk")).values_list("state", "n"))
    return {
        "connection": {
            "status": conn.status if conn else "disconnected",
            "realm_id": conn.realm_id if conn else "",
            "company_name": conn.company_name if conn else "",
            "environment": conn.environment if conn else "",
            "access_token_expires_at": conn.access_token_expires_at if conn else None,
            "last_error": conn.last_error if conn else "",
            "paused": bool(conn and conn.paused_at),
            "paused_at": conn.paused_at if conn else None,
            "pause_reason": conn.pause_reason if conn else "",
        },
        "queue": queue_counts(organization_id),
        "conflicts": {"open": conflicts.get("open", 0), "auto_resolved": conflicts.get("auto_resolved", 0),
                      "resolved": conflicts.get("resolved", 0)},
        "pulls": cursors,
        "last_jobs": last_jobs,
    }
