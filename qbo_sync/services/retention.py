"""Retention: what qbo_sync keeps, and for how long (``QBO_SYNC["RETENTION_DAYS"]``).

Without it the sync log, finished queue items and webhook events grow with every save. The nightly purge
(``qbo_sync.nightly.purge`` schedule, ``manage.py qbo_sync purge``) deletes, in bounded batches so a big backlog never
holds a long write lock:

- ``jobs``: jobs that ended ``completed`` or ``cancelled`` more than N days ago, with their queue items, and
  real-time queue items (no job) that ended ``completed`` or ``cancelled`` more than N days ago;
- ``sync_log``: sync log rows older than N days;
- ``webhook_events``: received webhook events older than N days, and the per-minute counts of refused deliveries
  (``RefusalCount``, reported as ``webhook_refusals``).

Never purged: pending, processing, failed or dead items and the jobs that hold them ("completed with failures"
waits for a person to retry or cancel it), conflicts, mappings, cursors and connections. ``None`` or ``0`` keeps a
kind forever.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Model, QuerySet
from django.utils import timezone

from qbo_sync.conf import qbo_settings
from qbo_sync.models import QueueItem, RefusalCount, SyncJob, SyncLog, WebhookEvent

KINDS = ("jobs", "sync_log", "webhook_events")
DEFAULT_RETENTION_DAYS: dict[str, int | None] = {"jobs": 30, "sync_log": 90, "webhook_events": 30}
#: Rows deleted per statement: small enough that SQLite's single writer is never held for long.
BATCH = 2000
ENDED = (QueueItem.Status.COMPLETED, QueueItem.Status.CANCELLED)


@dataclass
class PurgeReport:
    cutoffs: dict[str, datetime | None] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "deleted": dict(self.deleted),
                "cutoffs": {k: v.isoformat() if v else None for k, v in self.cutoffs.items()}}


def retention_days() -> dict[str, int | None]:
    """The configured days per kind, over the defaults. Unknown kinds raise ``ValueError``; a value that is not a
    whole number of days (or None) raises QboConfigurationError when the setting is read."""
    configured = qbo_settings.RETENTION_DAYS or {}
    unknown = set(configured) - set(KINDS)
    if unknown:
        raise ValueError(f"Unknown kind(s) {', '.join(sorted(unknown))} in QBO_SYNC['RETENTION_DAYS']; "
                         f"use {', '.join(KINDS)}.")
    return {**DEFAULT_RETENTION_DAYS, **configured}  # the values are validated by qbo_settings


def purge(now: datetime | None = None, *, dry_run: bool = False) -> PurgeReport:
    """Delete what is older than its retention (see the module docstring). ``dry_run`` only counts."""
    now = now or timezone.now()
    report = PurgeReport(dry_run=dry_run)
    for kind, days in retention_days().items():
        report.cutoffs[kind] = now - timedelta(days=days) if days else None
    jobs_cutoff = report.cutoffs["jobs"]
    if jobs_cutoff is not None:
        old_jobs = SyncJob.objects.filter(state__in=[SyncJob.State.COMPLETED, SyncJob.State.CANCELLED],
                                          finished_at__lt=jobs_cutoff)
        # Items first (their job FK is SET NULL): the items of old finished jobs, then old ended real-time items.
        report.deleted["queue_items"] = (
            _delete(QueueItem.objects.filter(job__in=old_jobs.values("pk")), dry_run)
            + _delete(QueueItem.objects.filter(job__isnull=True, status__in=ENDED, updated_at__lt=jobs_cutoff),
                      dry_run))
        report.deleted["jobs"] = _delete(old_jobs, dry_run)
    if report.cutoffs["sync_log"] is not None:
        report.deleted["sync_log"] = _delete(SyncLog.objects.filter(created_at__lt=report.cutoffs["sync_log"]),
                                             dry_run)
    if report.cutoffs["webhook_events"] is not None:
        report.deleted["webhook_events"] = _delete(
            WebhookEvent.objects.filter(received_at__lt=report.cutoffs["webhook_events"]), dry_run)
        report.deleted["webhook_refusals"] = _delete(
            RefusalCount.objects.filter(minute__lt=report.cutoffs["webhook_events"]), dry_run)
    return report


def _delete(qs: QuerySet[Model], dry_run: bool) -> int:
    if dry_run:
        return qs.count()
    total = 0
    while True:
        with transaction.atomic():
            ids = list(qs.order_by().values_list("pk", flat=True)[:BATCH])
            if not ids:
                return total
            # delete() keeps Django's on_delete rules (a purged job's log rows keep their text, job set to NULL).
            qs.model._default_manager.filter(pk__in=ids).delete()
        total += len(ids)
