"""django-q2 entry points. Their dotted names are public API (schedules and queued tasks refer to them): keep them.

These tasks only *trigger* work. The work itself is rows in our queue tables, claimed with leases, so a task that is
lost, delivered twice or run concurrently with another loses and doubles nothing (docs/operations.md).

- ``qbo_sync.tasks.drain_task``: drain the queue for up to DRAIN_BUDGET_SECONDS (waiting for items due within
  DRAIN_WAIT_SECONDS, such as a save's), re-enqueue itself while due work remains. Also run every minute by the
  ``qbo_sync.drain`` safety-net schedule.
- ``qbo_sync.tasks.kick``: called on commit after an enqueue; queues a drain soon, at most one queued and not yet
  started across all processes (the ``DrainSignal`` row, ``services/wakeup.py``).
- ``qbo_sync.tasks.nightly_pull``: the nightly schedules' entry point (one pull job per organization and entity).
- ``qbo_sync.tasks.nightly_reconcile``: the nightly reconciliation of every connected organization (SyncLog rows).
- ``qbo_sync.tasks.nightly_purge``: the nightly retention purge (QBO_SYNC["RETENTION_DAYS"]).
"""

from __future__ import annotations

import logging
from typing import Any

from qbo_sync import registry
from qbo_sync.models import QboConnection
from qbo_sync.services.schedules import PULL_ENTITIES
from qbo_sync.services.wakeup import DRAIN_TASK, DRAIN_TASK_NAME, KICK_SECONDS, kick

logger = logging.getLogger(__name__)

# Nothing in ``qbo_sync.services`` imports this module: it is the top layer (the kick lives in services/wakeup.py
# and refers to ``drain_task`` by its dotted name). Re-exported here because their names are public.
__all__ = ["DRAIN_TASK", "DRAIN_TASK_NAME", "KICK_SECONDS", "PULL_ENTITIES", "drain_task", "kick", "nightly_pull",
           "nightly_purge", "nightly_reconcile"]


def drain_task(organization_id: int | None = None, budget_seconds: float | None = None) -> dict[str, Any]:
    """Run one drain; queue the next one if due work remains. Returns the drain report (saved as the task result)."""
    from qbo_sync.services import wakeup
    from qbo_sync.services.drain import drain

    wakeup.clear_queued()  # this drain has started: a later enqueue may queue the next one
    report = drain(budget_seconds=budget_seconds, organization_id=organization_id)
    if report.more_due:
        wakeup.queue_drain(organization_id)
    return report.as_dict()


def nightly_pull(entity: str, full: bool = False) -> list[int]:
    """Start (or attach to) a pull of ``entity`` ("payments", "customers", "items" or an entity type) for every
    organization with a QuickBooks connection. Returns the job ids."""
    from qbo_sync.services.queue import start_pull

    entity_type = PULL_ENTITIES.get(entity, entity)
    if entity_type not in registry.pullable():
        raise ValueError(f"{entity!r} is not pulled; use one of {', '.join(PULL_ENTITIES)}.")
    org_ids = QboConnection.objects.filter(
        status__in=[QboConnection.Status.CONNECTED, QboConnection.Status.NEEDS_REAUTH],
    ).values_list("organization_id", flat=True)
    from qbo_sync.models import AuditEntry
    from qbo_sync.permissions import Actor
    from qbo_sync.services.audit import record

    job_ids = []
    for org_id in org_ids:
        job = start_pull(org_id, entity_type, full=full)
        record(Actor.system("schedule"), AuditEntry.Action.START_PULL, org_id, job=job, entity_type=entity_type,
               summary=f"Nightly pull of {entity_type} (job {job.pk})")
        job_ids.append(job.pk)
    return job_ids


def nightly_reconcile() -> list[dict[str, Any]]:
    """Reconcile every connected organization; each verdict is logged (SyncLog ``reconciled``). Returns a summary
    per organization (no repairs: a person, the API or ``qbo_sync reconcile --repair`` applies them)."""
    from qbo_sync.services.reconcile import reconcile_all

    return [{"organization_id": r.organization_id, "books_match": r.books_match, "drift": len(r.drift),
             "in_flight": r.in_flight} for r in reconcile_all()]


def nightly_purge() -> dict[str, Any]:
    """Delete what is past its retention (services/retention.py). Returns the counts per kind."""
    from qbo_sync.services.retention import purge

    report = purge()
    logger.info("qbo_sync purge: %s", report.deleted)
    return report.as_dict()
