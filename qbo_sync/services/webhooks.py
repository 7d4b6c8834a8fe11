"""Pulls that webhooks ask for."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from qbo_sync.models import AuditEntry, QueueItem, SyncJob
from qbo_sync.permissions import Actor
from qbo_sync.services import wakeup
from qbo_sync.services.audit import record


def request_pull(organization_id: int, entity: str) -> SyncJob:
    """Make sure an incremental pull of ``entity`` starts after this moment.

    A pending pull will do (it has not read anything yet). A *running* one may have read past this change
    already, so a new pending pull is queued behind it: a burst of events costs at most one extra pull.
    """
    with transaction.atomic():
        pending = SyncJob.objects.select_for_update().filter(
            organization_id=organization_id, kind=SyncJob.Kind.PULL, entity_type=entity,
            state=SyncJob.State.PENDING).first()
        if pending is not None:
            return pending
        job = SyncJob.objects.create(organization_id=organization_id, kind=SyncJob.Kind.PULL, entity_type=entity,
                                     total=1, description=f"Pull of {entity} (QuickBooks webhook)",
                                     options={"full": False, "webhook": True})
        QueueItem.objects.create(organization_id=organization_id, job=job, entity_type=entity,
                                 operation=QueueItem.Operation.PULL, priority=QueueItem.Priority.REALTIME,
                                 next_attempt_at=timezone.now())
        record(Actor.system("webhook"), AuditEntry.Action.START_PULL, organization_id, job=job, entity_type=entity,
               summary=f"QuickBooks webhook: pull of {entity} (job {job.pk})")

    wakeup.kick_on_commit()
    return job
