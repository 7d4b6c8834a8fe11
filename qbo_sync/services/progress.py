"""Progress figures of jobs and queues, from our own tables (never django-q2's), computed here and only here.

A job's progress is one typed result, :class:`JobProgress` (counts per status, done/total, percent, measured rate,
ETA, state, and why it is slow or paused); the API, the admin and the command line render it and compute nothing of
their own. Lists of jobs (the API's and the admin's) show :class:`Counts` from one annotated query
(:func:`annotate_counts`), the command line's several jobs at once :func:`combine`.

``job_progress`` costs two small queries whatever the job's size: the job's items grouped by status (counts, the
last completion and touch, the oldest due time and the rate window's counts, served by the ``(job, status)`` index)
and the connection's status (none when the job row was read through :func:`with_connection`). The rate window's
counts used to be a second query over the job's items (with an OR of three conditions); folded into the grouped
query they cost a fraction of it (docs/performance.md, "Progress endpoint").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from django.db.models import Count, F, Max, Min, Q, QuerySet
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
#: Why a job with work left is not moving at full speed (``JobProgress.slow_reason``).
SLOW_REASONS = ("paused", "waiting for reconnect", "throttled", "no worker running")


def throttle_ceiling_per_minute() -> float:
    """The most items a realm can move per minute: batch calls of BATCH_SIZE under BATCH_CALLS_PER_MINUTE, or single
    requests under RATE_LIMIT_PER_MINUTE, whichever is more (scaled like every QBO window by TIME_SCALE)."""
    per_minute = max(int(qbo_settings.BATCH_CALLS_PER_MINUTE) * int(qbo_settings.BATCH_SIZE),
                     int(qbo_settings.RATE_LIMIT_PER_MINUTE))
    return per_minute * float(qbo_settings.TIME_SCALE or 1.0)


def percent_of(done: int, total: int) -> float:
    """``done`` out of ``total`` in percent, one decimal; an empty job is 100 % done."""
    return round(100.0 * done / total, 1) if total else 100.0


@dataclass(frozen=True)
class Counts:
    """A job's items per status and what they add up to. ``declared`` is the job's own ``total`` (the items it was
    started with); the total is never less than the items counted."""

    pending: int = 0
    processing: int = 0
    completed: int = 0
    failed: int = 0
    dead: int = 0
    cancelled: int = 0
    declared: int = 0

    @classmethod
    def of(cls, declared: int, per_status: Mapping[str, int]) -> Counts:
        return cls(declared=declared, **{s: int(per_status.get(s) or 0) for s in STATUSES})

    def per_status(self) -> dict[str, int]:
        return {s: getattr(self, s) for s in STATUSES}

    @property
    def total(self) -> int:
        return max(self.declared, sum(self.per_status().values()))

    @property
    def remaining(self) -> int:
        """Items still to be sent or pulled (pending or in a worker's chunk)."""
        return self.pending + self.processing

    @property
    def done(self) -> int:
        """Items finished in any way (completed, failed, dead or cancelled)."""
        return self.total - self.remaining if self.total else 0

    @property
    def failures(self) -> int:
        return self.failed + self.dead

    @property
    def percent(self) -> float:
        return percent_of(self.done, self.total)

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, **self.per_status(), "done": self.done, "remaining": self.remaining,
                "percent": self.percent}


@dataclass(frozen=True)
class JobProgress:
    """One job's progress: what every surface shows (API, admin, progress page, command line)."""

    job: int
    kind: str
    entity_type: str
    #: The job's own state (``SyncJob.State``). A paused organization's unfinished job keeps its state; ``paused``
    #: and ``pause_reason`` say so, and ``slow_reason`` is ``"paused"`` while work remains.
    state: str
    counts: Counts
    rate_per_minute: float
    throttle_ceiling_per_minute: float
    #: Seconds left at the measured rate (bounded by the throttle ceiling); 0 when nothing remains, ``None`` when
    #: nothing has finished yet to measure.
    eta_seconds: float | None
    #: One of :data:`SLOW_REASONS` when work remains and it is not moving at full speed, else ``None``.
    slow_reason: str | None
    paused: bool
    pause_reason: str
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    last_completed_at: datetime | None = None

    @property
    def total(self) -> int:
        return self.counts.total

    @property
    def done(self) -> int:
        return self.counts.done

    @property
    def remaining(self) -> int:
        return self.counts.remaining

    @property
    def percent(self) -> float:
        return self.counts.percent

    @property
    def failures(self) -> int:
        return self.counts.failures

    @property
    def shown_state(self) -> str:
        """The state a person reads: ``paused`` for an unfinished job of a paused organization, else the job's."""
        return "paused" if self.paused and self.state in UNFINISHED_STATES else self.state

    @property
    def why_slow(self) -> str | None:
        """``slow_reason`` in words: a pause says the operator's reason (``"paused: month-end close"``)."""
        if self.slow_reason == "paused" and self.pause_reason:
            return f"paused: {self.pause_reason}"
        return self.slow_reason

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain values (the API's body, the command line's ``--json``)."""
        return {
            "job": self.job, "kind": self.kind, "entity_type": self.entity_type, "state": self.state,
            **self.counts.as_dict(),
            "rate_per_minute": self.rate_per_minute, "throttle_ceiling_per_minute": self.throttle_ceiling_per_minute,
            "eta_seconds": self.eta_seconds, "slow_reason": self.slow_reason, "paused": self.paused,
            "pause_reason": self.pause_reason, "created_at": self.created_at, "started_at": self.started_at,
            "finished_at": self.finished_at, "last_completed_at": self.last_completed_at,
        }


UNFINISHED_STATES = (SyncJob.State.PENDING, SyncJob.State.RUNNING)


@dataclass(frozen=True)
class ItemFigures:
    """What one grouped query over a job's items says: counts per status, times, and the rate window's counts."""

    per_status: dict[str, int] = field(default_factory=dict)
    last_completed_at: datetime | None = None
    oldest_due: datetime | None = None
    last_touched: datetime | None = None
    done_in_window: int = 0
    throttled: int = 0
    waiting: int = 0

    @property
    def fingerprint(self) -> str:
        """Changes whenever an item of the job changes status or is touched (what an ETag needs)."""
        counts = ",".join(f"{s}={n}" for s, n in sorted(self.per_status.items()))
        return f"{counts}|{self.last_touched}"


@dataclass(frozen=True)
class ConnectionState:
    status: str | None = None
    paused_at: datetime | None = None
    pause_reason: str = ""
    updated_at: datetime | None = None


def rate_window(job: SyncJob, now: datetime) -> tuple[datetime, datetime]:
    """The completions the rate is measured over: the trailing window of a running job (from its start, if
    shorter), or the whole run of a finished one."""
    began = job.started_at or job.created_at or now
    if job.finished_at is not None:
        return began, job.finished_at
    return max(now - timedelta(seconds=RATE_WINDOW_SECONDS), began), now


def item_figures(job: SyncJob, now: datetime | None = None) -> ItemFigures:
    """The job's items grouped by status, with the rate window's counts: one query, through the ``(job, status)``
    index.

    Each group counts only what a row of any status could match (completed in the window, touched in the window,
    throttled lately, waiting for a reconnect); the status each count belongs to is picked here, which costs the
    database less per row than a condition that repeats the status."""
    now = now or timezone.now()
    window_start, window_end = rate_window(job, now)
    grouped = QueueItem.objects.filter(job_id=job.pk).values("status").annotate(
        n=Count("pk"), last_completed=Max("completed_at"), oldest_due=Min("next_attempt_at"),
        last_touched=Max("updated_at"),
        completed_in_window=Count("pk", filter=Q(completed_at__gte=window_start, completed_at__lte=window_end)),
        touched_in_window=Count("pk", filter=Q(updated_at__gte=window_start, updated_at__lte=window_end)),
        throttled=Count("pk", filter=Q(attempts__gt=0, error_code__in=THROTTLE_CODES,
                                        updated_at__gte=now - timedelta(seconds=RATE_WINDOW_SECONDS))),
        waiting=Count("pk", filter=Q(error_code="wait"))).order_by()
    rows: dict[str, dict[str, Any]] = {row["status"]: dict(row) for row in grouped}
    pending = rows.get(Status.PENDING, {})

    def pick(key: Literal["last_completed", "last_touched"],
             func: Callable[[list[datetime]], datetime]) -> datetime | None:
        values = [row[key] for row in rows.values() if row[key] is not None]
        return func(values) if values else None

    return ItemFigures(
        per_status={status: row["n"] for status, row in rows.items()},
        last_completed_at=pick("last_completed", max), oldest_due=pending.get("oldest_due"),
        last_touched=pick("last_touched", max),
        # Finished in the window: completions by their time, failures by when they were last touched.
        done_in_window=rows.get(Status.COMPLETED, {}).get("completed_in_window", 0) + sum(
            rows.get(s, {}).get("touched_in_window", 0) for s in (Status.FAILED, Status.DEAD)),
        throttled=pending.get("throttled", 0), waiting=pending.get("waiting", 0))


_CONNECTION_FIELDS = ("status", "paused_at", "pause_reason", "updated_at")


def with_connection(queryset: QuerySet) -> QuerySet:
    """Jobs read with their organization's connection state (a join on the one-to-one connection: no extra round
    trip, and never the token columns), which :func:`connection_state` and :func:`job_progress` then use."""
    return queryset.annotate(**{f"_qbo_connection_{name}": F(f"organization__qbo_connection__{name}")
                                for name in _CONNECTION_FIELDS})


def connection_state(job: SyncJob) -> ConnectionState:
    """The job's organization's connection: from :func:`with_connection`'s annotations, else one query."""
    if hasattr(job, "_qbo_connection_status"):
        values = [getattr(job, f"_qbo_connection_{name}") for name in _CONNECTION_FIELDS]
    else:
        values = list(QboConnection.objects.filter(organization_id=job.organization_id)
                      .values_list(*_CONNECTION_FIELDS).first() or (None, None, "", None))
    status, paused_at, pause_reason, updated_at = values
    return ConnectionState(status, paused_at, pause_reason or "", updated_at)


def job_progress(job: SyncJob, now: datetime | None = None, *, figures: ItemFigures | None = None,
                 connection: ConnectionState | None = None) -> JobProgress:
    """State, counts per status, percent done, measured rate (items per minute), ETA and why it is slow, if it is.

    ``figures`` and ``connection`` may be passed when the caller already read them (the API reads them for the
    ETag first)."""
    now = now or timezone.now()
    figures = figures or item_figures(job, now)
    connection = connection or connection_state(job)
    window_start, window_end = rate_window(job, now)

    counts = Counts.of(job.total, figures.per_status)
    remaining = counts.remaining
    minutes = (window_end - window_start).total_seconds() / 60
    rate = figures.done_in_window / minutes if minutes > 0 and figures.done_in_window else 0.0
    ceiling = throttle_ceiling_per_minute()
    effective = min(rate, ceiling)
    eta = round(remaining / effective * 60, 1) if remaining and effective > 0 else (0.0 if not remaining else None)
    paused = connection.paused_at is not None

    slow_reason = None
    if remaining and paused:
        slow_reason = "paused"
    elif remaining and connection.status in (QboConnection.Status.NEEDS_REAUTH, QboConnection.Status.DISCONNECTED):
        slow_reason = "waiting for reconnect"
    elif remaining and figures.throttled:
        slow_reason = "throttled"
    elif remaining and figures.waiting:
        slow_reason = "waiting for reconnect"
    elif remaining and not counts.processing and _stalled(figures, now):
        slow_reason = "no worker running"

    return JobProgress(
        job=job.pk, kind=job.kind, entity_type=job.entity_type, state=job.state, counts=counts,
        rate_per_minute=round(rate, 1), throttle_ceiling_per_minute=ceiling, eta_seconds=eta,
        slow_reason=slow_reason, paused=paused, pause_reason=connection.pause_reason if paused else "",
        created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at,
        last_completed_at=figures.last_completed_at)


def _stalled(figures: ItemFigures, now: datetime) -> bool:
    """Items have been due for a while and nothing of the job moved meanwhile: no worker seems to be running."""
    quiet_since = now - timedelta(seconds=NO_WORKER_AFTER_SECONDS / float(qbo_settings.TIME_SCALE or 1.0))
    due, touched = figures.oldest_due, figures.last_touched
    return due is not None and due <= quiet_since and (touched is None or touched <= quiet_since)


# --- lists and several jobs ----------------------------------------------------------------------------------------

_COUNT_PREFIX = "_qbo_n_"


def annotate_counts(queryset: QuerySet) -> QuerySet:
    """Jobs with their items counted per status in the same query (a list page's progress column); read them with
    :func:`counts_of`."""
    return queryset.annotate(**{f"{_COUNT_PREFIX}{s}": Count("items", filter=Q(items__status=s)) for s in STATUSES})


def counts_of(job: SyncJob) -> Counts:
    """The counts :func:`annotate_counts` put on ``job``."""
    return Counts.of(job.total, {s: getattr(job, f"{_COUNT_PREFIX}{s}") for s in STATUSES})


@dataclass(frozen=True)
class CombinedProgress:
    """Several jobs' progress as one (the command line waits for a push and a pull together)."""

    total: int
    done: int
    remaining: int
    failures: int
    percent: float
    rate_per_minute: float
    eta_seconds: float | None
    why_slow: str | None


def combine(progresses: Sequence[JobProgress]) -> CombinedProgress:
    """done/total and the summed rate of several jobs; the ETA is the longest (unknown if any is); the first reason
    any is slow."""
    total = sum(p.total for p in progresses)
    done = sum(p.done for p in progresses)
    remaining = sum(p.remaining for p in progresses)
    etas = [p.eta_seconds for p in progresses if p.remaining]
    eta = 0.0 if not remaining else (None if not etas or None in etas else max(e for e in etas if e is not None))
    return CombinedProgress(
        total=total, done=done, remaining=remaining, failures=sum(p.failures for p in progresses),
        percent=percent_of(done, total), rate_per_minute=round(sum(p.rate_per_minute for p in progresses), 1),
        eta_seconds=eta, why_slow=next((p.why_slow for p in progresses if p.slow_reason), None))


# --- queues --------------------------------------------------------------------------------------------------------


def _status_counts() -> dict[str, Count]:
    return {s: Count("pk", filter=Q(status=s)) for s in STATUSES}


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
