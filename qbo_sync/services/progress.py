"""Progress figures of jobs and queues, from our own tables (never django-q2's), in a constant number of queries.

``job_progress`` is three small queries whatever the job's size: the job's items grouped by status (counts and
first/last times per status, served by the ``(job, status)`` index), the few counts of the rate window (finished
lately, throttled, waiting: only the rows that can match are read) and the connection's status. One aggregate with a
conditional count per status measured 5-10 times slower on 2,000 items (docs/performance.md, "Fleet").
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from qbo_sync.conf import qbo_settings
from qbo_sync.models import QboConnection, QueueItem, SyncJob

Status = QueueItem.Status
STATUSES = [s.value for s in Status]

#: ``error_code`` values of a retry caused by QBO's throttle (HTTP 429 / fault 3001). The processor should use one.
THROTTLE_CODES = ("throttled", "429", "3001")
#: Work due this long with nothing of the job touched meanwhile means no worker is draining the queue (the safety-net
#: drain runs every minute while a cluster is up).
NO_WORKER_AFTER_SECONDS = 120
#: The rate is measured over the completions of this trailing window (or since the job started, if shorter).
RATE_WINDOW_SECONDS = 300


def throttle_ceiling_per_minute() -> float:
    """The most items a realm can move per minute: batch calls of BATCH_SIZE under BATCH_CALLS_PER_MINUTE, or single
    requests under RATE_LIMIT_PER_MINUTE, whichever is more (scaled like every QBO window by TIME_SCALE)."""
    per_minute = max(int(qbo_settings.BATCH_CALLS_PER_MINUTE) * int(qbo_settings.BATCH_SIZE),
                     int(qbo_settings.RATE_LIMIT_PER_MINUTE))
    return per_minute * float(qbo_settings.TIME_SCALE or 1.0)


def _status_counts() -> dict[str, Count]:
    return {s: Count("pk", filter=Q(status=s)) for s in STATUSES}


def _job_figures(job_id: int, now: datetime, window_start: datetime, window_end: datetime) -> dict[str, Any]:
    by_status = {row["status"]: row for row in QueueItem.objects.filter(job_id=job_id).values("status").annotate(
        n=Count("pk"), first_completed=Min("completed_at"), last_completed=Max("completed_at"),
        oldest_due=Min("next_attempt_at"), last_touched=Max("updated_at")).order_by()}
    finished = Q(status=Status.COMPLETED, completed_at__gte=window_start, completed_at__lte=window_end) | Q(
        status__in=[Status.FAILED, Status.DEAD], updated_at__gte=window_start, updated_at__lte=window_end)
    throttled = Q(status=Status.PENDING, attempts__gt=0, error_code__in=THROTTLE_CODES,
                  updated_at__gte=now - timedelta(seconds=RATE_WINDOW_SECONDS))
    waiting = Q(status=Status.PENDING, error_code="wait")
    window = QueueItem.objects.filter(Q(job_id=job_id) & (finished | throttled | waiting)).aggregate(
        done_in_window=Count("pk", filter=finished), throttled=Count("pk", filter=throttled),
        waiting=Count("pk", filter=waiting))

    def pick(key: str, func: Any) -> Any:
        values = [row[key] for row in by_status.values() if row[key] is not None]
        return func(values) if values else None

    return {**{s: by_status[s]["n"] if s in by_status else 0 for s in STATUSES}, **window,
            "first_completed_at": pick("first_completed", min), "last_completed_at": pick("last_completed", max),
            "oldest_due": by_status[Status.PENDING]["oldest_due"] if Status.PENDING in by_status else None,
            "last_touched": pick("last_touched", max)}


def job_progress(job: SyncJob, now: datetime | None = None) -> dict[str, Any]:
    """State, counts per status, percent done, measured rate (items per minute), ETA and why it is slow, if it is."""
    now = now or timezone.now()
    began = job.started_at or job.created_at or now
    window_start = max(now - timedelta(seconds=RATE_WINDOW_SECONDS), began)
    if job.finished_at is not None:  # a finished job: its average rate over the whole run
        window_start, window_end = began, job.finished_at
    else:
        window_end = now
    agg = _job_figures(job.pk, now, window_start, window_end)
    connection_status, paused_at, pause_reason = (
        QboConnection.objects.filter(organization_id=job.organization_id)
        .values_list("status", "paused_at", "pause_reason").first() or (None, None, ""))

    counts = {s: agg[s] for s in STATUSES}
    total = max(job.total, sum(counts.values()))
    remaining = counts[Status.PENDING] + counts[Status.PROCESSING]
    done = total - remaining if total else 0
    minutes = (window_end - window_start).total_seconds() / 60
    rate = agg["done_in_window"] / minutes if minutes > 0 and agg["done_in_window"] else 0.0
    ceiling = throttle_ceiling_per_minute()
    effective = min(rate, ceiling)
    eta = round(remaining / effective * 60, 1) if remaining and effective > 0 else (0.0 if not remaining else None)

    slow_reason = None
    if remaining and paused_at is not None:
        slow_reason = "paused"
    elif remaining and connection_status in (QboConnection.Status.NEEDS_REAUTH, QboConnection.Status.DISCONNECTED):
        slow_reason = "waiting for reconnect"
    elif remaining and agg["throttled"]:
        slow_reason = "throttled"
    elif remaining and agg["waiting"]:
        slow_reason = "waiting for reconnect"
    elif remaining and not counts[Status.PROCESSING] and _stalled(agg, now):
        slow_reason = "no worker running"

    return {
        "job": job.pk,
        "kind": job.kind,
        "entity_type": job.entity_type,
        "state": job.state,
        "total": total,
        **counts,
        "done": done,
        "remaining": remaining,
        "percent": round(100.0 * done / total, 1) if total else 100.0,
        "rate_per_minute": round(rate, 1),
        "throttle_ceiling_per_minute": ceiling,
        "eta_seconds": eta,
        "slow_reason": slow_reason,
        "paused": paused_at is not None,
        "pause_reason": pause_reason if paused_at is not None else "",
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "last_completed_at": agg["last_completed_at"],
    }


def _stalled(agg: dict[str, Any], now: datetime) -> bool:
    """Items have been due for a while and nothing of the job moved meanwhile: no worker seems to be running."""
    quiet_since = now - timedelta(seconds=NO_WORKER_AFTER_SECONDS / float(qbo_settings.TIME_SCALE or 1.0))
    due, touched = agg["oldest_due"], agg["last_touched"]
    return due is not None and due <= quiet_since and (touched is None or touched <= quiet_since)


def queue_counts(organization_id: int, entity_type: str | None = None) -> dict[str, Any]:
    """Counts per status of an organization's queue (optionally one entity), how many are due now, and the age in
    seconds of the oldest due item: one query."""
    now = timezone.now()
    qs = QueueItem.objects.filter(organization_id=organization_id)
    if entity_type:
        qs = qs.filter(entity_type=entity_type)
    due = Q(status=Status.PENDING, next_attempt_at__lte=now)
    agg = qs.aggregate(**_status_counts(), due=Count("pk", filter=due), oldest_due=Min("next_attempt_at", filter=due))
    oldest = agg.pop("oldest_due")
    agg["oldest_due_seconds"] = round((now - oldest).total_seconds(), 1) if oldest else None
    return agg
