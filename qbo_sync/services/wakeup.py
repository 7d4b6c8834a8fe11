"""Who wakes the next drain: the one-row ``DrainSignal`` that every process shares (web, workers, other clusters).

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

from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from qbo_sync.models import DrainSignal

#: The row's name.
DRAIN = "drain"
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


__all__ = ["clear_queued", "hold_wait", "mark_queued", "release_wait"]
