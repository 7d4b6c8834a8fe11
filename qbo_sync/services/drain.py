"""Drain the queue: claim a chunk, process it, record the outcomes, again, within a time budget.

A drain is what a django-q2 task runs (``qbo_sync.tasks.drain_task``) and what ``manage.py qbo_sync drain`` runs in
the foreground. It stops claiming when the remaining budget is below the longest chunk it has seen (so it ends
before the django-q2 ``timeout`` kills it mid-chunk) or when nothing is due.

"Nothing due" is not the end when something is due *soon*: a host save enqueues its item PUSH_DELAY_SECONDS ahead,
and the drain its commit kicked starts before that. Such a drain waits (up to DRAIN_WAIT_SECONDS, within its budget)
for the next due time and drains it, so a save reaches QuickBooks within seconds on an idle system instead of at the
next run of the minute schedule. Only one drain waits at a time, across all processes (``services/wakeup.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from django.utils import timezone

from qbo_sync.conf import qbo_settings
from qbo_sync.services import queue, wakeup
from qbo_sync.services.outcomes import Outcome
from qbo_sync.services.process import process_items

logger = logging.getLogger(__name__)

#: Keep this much of the budget in reserve on top of the chunk estimate.
SAFETY_FACTOR = 1.25
#: A waiting drain looks again at least this often (new due work, a job started meanwhile, a lost waiter role).
WAIT_STEP_SECONDS = 1.0
#: ... and at most this often (an item due "now" that another worker took between our claim and our look).
MIN_PAUSE_SECONDS = 0.1


def _sleep(seconds: float) -> None:
    time.sleep(seconds)  # tests replace this with a shift of time-machine's clock


@dataclass
class ChunkReport:
    organization_id: int
    claimed: int
    seconds: float
    counts: dict[str, int]


@dataclass
class DrainReport:
    worker_id: str
    budget_seconds: float
    chunks: int = 0
    claimed: int = 0
    completed: int = 0
    retried: int = 0
    failed: int = 0
    dead: int = 0
    waiting: int = 0
    superseded: int = 0
    lost: int = 0
    seconds: float = 0.0
    #: "idle" (nothing due), "budget" (the next chunk would not fit) or "error".
    stopped: str = ""
    #: Due work was left behind (the caller should drain again soon).
    more_due: bool = False
    #: Seconds spent waiting for items due soon (a save's push delay).
    waited_seconds: float = 0.0
    #: When stopped "idle": when the next pending item is due (ISO 8601), "" when none is pending.
    next_due_at: str = ""
    organizations: list[int] = field(default_factory=list)

    def add(self, counts: dict[str, int]) -> None:
        for name in ("completed", "retried", "failed", "dead", "waiting", "superseded", "lost"):
            setattr(self, name, getattr(self, name) + counts.get(name, 0))

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def drain(budget_seconds: float | None = None, worker_id: str | None = None, organization_id: int | None = None,
          on_chunk: Callable[[ChunkReport, DrainReport], None] | None = None) -> DrainReport:
    """Process due queue items until nothing is due or the time budget (default DRAIN_BUDGET_SECONDS) would be
    exceeded by one more chunk. ``organization_id`` limits the drain to one organization. When nothing is due but
    an item is due within DRAIN_WAIT_SECONDS, the drain waits for it (see the module docstring)."""
    budget = float(budget_seconds if budget_seconds is not None else qbo_settings.DRAIN_BUDGET_SECONDS)
    worker_id = worker_id or queue.default_worker_id()
    report = DrainReport(worker_id=worker_id, budget_seconds=budget)
    clock = time.time  # wall clock (time-machine drives it in tests); chunks are seconds long, not microseconds
    start = clock()
    estimate = 0.0  # the longest chunk seen so far
    waiting = False  # this drain holds the waiter role (services/wakeup.py)
    try:
        while True:
            remaining = budget - (clock() - start)
            if remaining <= 0 or remaining < estimate * SAFETY_FACTOR:
                report.stopped = "budget"
                report.more_due = queue.has_due_work(organization_id)
                break
            chunk_start = clock()
            org, items = queue.claim_chunk(worker_id, organization_id=organization_id)
            if org is None or not items:  # (None, []): nothing due
                pause = _wait_for(report, organization_id, remaining - estimate * SAFETY_FACTOR)
                if pause is None:
                    report.stopped = "idle"
                    break
                waiting = organization_id is None
                _sleep(pause)
                report.waited_seconds = round(report.waited_seconds + pause, 3)
                continue
            if waiting:
                wakeup.release_wait(worker_id)
                waiting = False
            try:
                outcomes = process_items(org, items)
            except Exception as exc:  # the processor promises not to raise; if it does, the chunk is retried
                logger.exception("Processing a chunk of %d item(s) for organization %s failed", len(items), org)
                message = f"{type(exc).__name__}: {exc}"[:2000]
                outcomes = {item.pk: Outcome.retry(message, code="processor_error") for item in items}
            counts = queue.apply_outcomes(items, outcomes)
            seconds = clock() - chunk_start
            estimate = max(estimate, seconds)
            report.chunks += 1
            report.claimed += len(items)
            report.add(counts)
            if org not in report.organizations:
                report.organizations.append(org)
            if on_chunk is not None:
                on_chunk(ChunkReport(organization_id=org, claimed=len(items), seconds=seconds, counts=counts), report)
    finally:
        if waiting:
            wakeup.release_wait(worker_id)
    report.seconds = round(clock() - start, 3)
    logger.info("Drain %s: %d chunk(s), %d item(s) in %.1fs (waited %.1fs), stopped: %s", worker_id, report.chunks,
                report.claimed, report.seconds, report.waited_seconds, report.stopped)
    return report


def _wait_for(report: DrainReport, organization_id: int | None, spare: float) -> float | None:
    """Nothing is due: how long to pause before looking again, or None to stop (nothing due within
    DRAIN_WAIT_SECONDS or the spare budget, or another drain already waits for it)."""
    next_due = queue.next_due_at(organization_id)
    report.next_due_at = next_due.isoformat() if next_due is not None else ""
    if next_due is None:
        return None
    ahead = (next_due - timezone.now()).total_seconds()
    if ahead > min(float(qbo_settings.DRAIN_WAIT_SECONDS), spare):
        return None
    # A drain limited to one organization waits without the waiter role: it would not drain the others' work.
    if organization_id is None and not wakeup.hold_wait(report.worker_id, next_due):
        return None
    return min(WAIT_STEP_SECONDS, max(MIN_PAUSE_SECONDS, ahead))
