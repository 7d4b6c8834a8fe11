"""Who wakes the next drain: the one-row ``DrainSignal`` that every process shares (web, workers, other clusters),
and the kick that queues a drain after an enqueue (:func:`kick`, public as ``qbo_sync.tasks.kick``).

Two questions are answered here, through the database rather than a per-process cache, so that a kick in a web
process and a drain in a worker process see the same answer:

- *Is a drain already queued?* ``mark_queued`` claims the right to queue one (at most one queued and not started at
  a time; a claim older than ``stale_after`` seconds counts as lost) and ``clear_queued`` frees it when a drain
  starts.
- *Is a drain already waiting for the next due item?* A drain that finds nothing due but an item due soon (a save's
  ``PUSH_DELAY_SECONDS``) waits for it instead of leaving it to the minute schedule. ``hold_wait`` makes it the
  only waiter (an earlier wake-up time takes the role over; a waiter that died is replaced once its time is
  ``WAITER_GRACE_SECONDS`` past), ``release_wait`` gives the role up.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from qbo_sync.models import DrainSignal

logger = logging.getLogger(__name__)

#: The row's name.
DRAIN = "drain"
#: The drain's django-q2 task, by its dotted name (public API: queued tasks and schedules name it).
DRAIN_TASK = "qbo_sync.tasks.drain_task"
#: Fixed name and group of every queued drain (visible as such in the django-q2 admin).
DRAIN_TASK_NAME = "qbo_sync-drain"
#: A queued drain that has not started after this many seconds is assumed lost and may be queued again (the minute
#: schedule also recovers it).
KICK_SECONDS = 10
#: A waiter whose wake-up time is this many seconds past is assumed dead.
WAITER_GRACE_SECONDS = 5.0


def mark_queued(stale_after: float) -> bool:
    """Claim the right to queue a drain: True unless another process queued one less than ``stale_after`` s ago
    that has not started yet."""
    now = timezone.now()
    free = Q(queued_at__isnull=True) | Q(queued_at__lt=now - timedelta(seconds=stale_after))
    if DrainSignal.objects.filter(free, name=DRAIN).update(queued_at=now):
        return True
    _, created = DrainSignal.objects.get_or_create(name=DRAIN, defaults={"queued_at": now})
    return created


def clear_queued() -> None:
    """A drain started (or queueing one failed): the next kick may queue another."""
    DrainSignal.objects.filter(name=DRAIN).update(queued_at=None)


def hold_wait(worker: str, until: datetime) -> bool:
    """Become (or stay) the one drain waiting for work due at ``until``. False when another live drain waits for
    work due no later than that (it will drain this work too, and wait again for what comes after)."""
    now = timezone.now()
    free = (Q(waiter="") | Q(waiter=worker) | Q(waiting_until__isnull=True) | Q(waiting_until__gt=until)
            | Q(waiting_until__lt=now - timedelta(seconds=WAITER_GRACE_SECONDS)))
    if DrainSignal.objects.filter(free, name=DRAIN).update(waiter=worker[:64], waiting_until=until):
        return True
    _, created = DrainSignal.objects.get_or_create(name=DRAIN, defaults={"waiter": worker[:64],
                                                                         "waiting_until": until})
    return created


def release_wait(worker: str) -> None:
    """Stop being the waiter (the wait ended: work was claimed, or the drain stops)."""
    DrainSignal.objects.filter(name=DRAIN, waiter=worker[:64]).update(waiter="", waiting_until=None)


def kick() -> bool:
    """Make sure a drain runs soon without flooding the broker: queue one unless one is already queued by any
    process and not started (for less than KICK_SECONDS). Never raises: a failed kick is recovered by the minute
    schedule."""
    try:
        if not mark_queued(KICK_SECONDS):
            return False
    except Exception:
        logger.warning("Could not record a drain kick; the qbo_sync.drain schedule will pick the work up",
                       exc_info=True)
        return False
    try:
        queue_drain()
    except Exception:
        logger.warning("Could not queue a drain; the qbo_sync.drain schedule will pick the work up", exc_info=True)
        try:
            clear_queued()
        except Exception:  # the row expires on its own after KICK_SECONDS
            logger.debug("Could not clear the drain kick", exc_info=True)
        return False
    return True


def kick_on_commit() -> None:
    """Kick a drain once the current transaction commits (what an enqueue or a resume does)."""
    transaction.on_commit(lambda: kick())


def queue_drain(organization_id: int | None = None) -> str:
    """Put one drain task into django-q2's broker (by the task's dotted name: services never import tasks)."""
    from django_q.tasks import async_task

    kwargs = {"organization_id": organization_id} if organization_id is not None else {}
    return async_task(DRAIN_TASK, task_name=DRAIN_TASK_NAME, group=DRAIN_TASK_NAME, ack_failure=True, **kwargs)


__all__ = ["DRAIN_TASK", "DRAIN_TASK_NAME", "KICK_SECONDS", "clear_queued", "hold_wait", "kick", "kick_on_commit",
           "mark_queued", "queue_drain", "release_wait"]
