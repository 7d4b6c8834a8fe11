"""django-q2 schedules of qbo_sync, installed idempotently by name (``manage.py qbo_sync schedules install``).

- ``qbo_sync.nightly.<entity>``: DAILY pulls at the times in QBO_SYNC["SCHEDULES"] (payments 02:00, customers 03:00,
  items 04:00 by default), local to settings.TIME_ZONE. Schedule.DAILY with an explicit next_run computed in that
  zone: django-q2 keeps a DAILY schedule on the same wall-clock time across DST changes (it corrects by
  Q_CLUSTER["time_zone"]), and CRON would need ``croniter``, which we do not ship.
- ``qbo_sync.nightly.reconcile``: DAILY reconciliation at QBO_SYNC["RECONCILE_AT"] (default 05:00, after the pulls;
  an empty value removes it).
- ``qbo_sync.nightly.purge``: DAILY retention purge at QBO_SYNC["PURGE_AT"] (default 05:30; an empty value removes
  it); what is kept and for how long is QBO_SYNC["RETENTION_DAYS"] (services/retention.py).
- ``qbo_sync.drain``: every minute, the safety net that recovers a lost kick or a lost drain task.

No catch-up storms: Q_CLUSTER["catch_up"] is False (a missed slot is skipped, not replayed), every next_run is
explicit and in the future, and a nightly run that is still going is attached to, not started twice
(``services.queue.start_pull``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypedDict
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule

from qbo_sync import registry
from qbo_sync.conf import qbo_settings

PREFIX = "qbo_sync."
#: The names the nightly schedules use (each pullable entity's plural), and the entity each pulls
#: (``qbo_sync.tasks.nightly_pull``'s argument).
PULL_ENTITIES = registry.schedules()
DRAIN_SCHEDULE = "qbo_sync.drain"
DRAIN_EVERY_MINUTES = 1


def nightly_name(entity: str) -> str:
    return f"{PREFIX}nightly.{entity}"


def next_daily_run(hhmm: str, now: dt.datetime | None = None, tz_name: str | None = None) -> dt.datetime:
    """The next ``HH:MM`` wall-clock time in ``tz_name`` (default settings.TIME_ZONE) strictly after ``now``, in UTC."""
    try:
        hour, minute = (int(part) for part in hhmm.split(":"))
        wall = dt.time(hour, minute)
    except (ValueError, TypeError):
        raise ValueError(f"Schedule time {hhmm!r} is not HH:MM.") from None
    zone = ZoneInfo(tz_name or settings.TIME_ZONE)
    local_now = (now or timezone.now()).astimezone(zone)
    day = local_now.date()
    while True:
        candidate = dt.datetime.combine(day, wall, tzinfo=zone)
        # A wall time that does not exist (spring-forward gap) normalises through UTC to the hour after.
        candidate = candidate.astimezone(dt.UTC)
        if candidate > local_now:
            return candidate
        day += dt.timedelta(days=1)


def wanted_schedules(now: dt.datetime | None = None) -> list[dict[str, Any]]:
    now = now or timezone.now()
    wanted: list[dict[str, Any]] = [{
        "name": DRAIN_SCHEDULE, "func": "qbo_sync.tasks.drain_task", "args": None,
        "schedule_type": Schedule.MINUTES, "minutes": DRAIN_EVERY_MINUTES,
        "next_run": now + dt.timedelta(minutes=DRAIN_EVERY_MINUTES),
    }]
    for entity, hhmm in (qbo_settings.SCHEDULES or {}).items():
        wanted.append({
            "name": nightly_name(entity), "func": "qbo_sync.tasks.nightly_pull", "args": repr((entity,)),
            "schedule_type": Schedule.DAILY, "minutes": None, "next_run": next_daily_run(hhmm, now),
        })
    for name, func, hhmm in (("reconcile", "qbo_sync.tasks.nightly_reconcile", qbo_settings.RECONCILE_AT),
                             ("purge", "qbo_sync.tasks.nightly_purge", qbo_settings.PURGE_AT)):
        if hhmm:
            wanted.append({
                "name": nightly_name(name), "func": func, "args": None,
                "schedule_type": Schedule.DAILY, "minutes": None, "next_run": next_daily_run(hhmm, now),
            })
    return wanted


def install_schedules() -> list[Schedule]:
    """Create or update qbo_sync's schedules (by name; running it twice changes nothing) and remove the nightly
    schedules of entities no longer configured. Returns the installed schedules."""
    for entity in qbo_settings.SCHEDULES or {}:
        if entity not in PULL_ENTITIES:
            raise ValueError(f"Unknown schedule {entity!r} in QBO_SYNC['SCHEDULES']; use {', '.join(PULL_ENTITIES)}.")
    installed = []
    now = timezone.now()
    with transaction.atomic():
        wanted = wanted_schedules(now)
        for spec in wanted:
            name = spec.pop("name")
            existing = list(Schedule.objects.select_for_update().filter(name=name).order_by("pk"))
            for extra in existing[1:]:  # the name is not unique in django-q2's table: heal duplicates
                extra.delete()
            current = existing[0] if existing else None
            if current is not None and _same_slot(current, spec, now):
                spec["next_run"] = current.next_run  # keep the slot it is waiting for: a re-install moves nothing
            schedule = current or Schedule()
            for field, value in {"name": name, "repeats": -1, "kwargs": None, "cron": None, "cluster": None,
                                 **spec}.items():
                setattr(schedule, field, value)
            schedule.save()
            installed.append(schedule)
        names = [s.name for s in installed]
        Schedule.objects.filter(name__startswith=PREFIX).exclude(name__in=names).delete()
    return installed


def _same_slot(current: Schedule, spec: dict[str, Any], now: dt.datetime) -> bool:
    if current.next_run is None or current.next_run <= now or current.schedule_type != spec["schedule_type"]:
        return False
    if spec["schedule_type"] == Schedule.DAILY:
        return current.next_run == spec["next_run"]
    return current.next_run <= spec["next_run"]


class InstalledSchedule(TypedDict):
    """One installed schedule as ``schedules list`` and ``status`` show it."""

    name: str
    func: str
    #: the task's arguments as django-q2 stores them (a repr), or None
    args: str | None
    #: django-q2's label of the schedule type ("Minutes", "Daily")
    type: str
    minutes: int | None
    repeats: int
    next_run: dt.datetime | None
    #: ``next_run`` in settings.TIME_ZONE, ISO 8601
    next_run_local: str | None
    #: the id of the task it last started, or None
    last_task: str | None


def list_schedules() -> list[InstalledSchedule]:
    """qbo_sync's installed schedules, with their next run in UTC and in settings.TIME_ZONE."""
    zone = ZoneInfo(settings.TIME_ZONE)
    return [
        InstalledSchedule(
            name=s.name, func=s.func, args=s.args, type=s.get_schedule_type_display(),
            minutes=s.minutes, repeats=s.repeats, next_run=s.next_run,
            next_run_local=s.next_run.astimezone(zone).isoformat() if s.next_run else None,
            last_task=s.task,
        )
        for s in Schedule.objects.filter(name__startswith=PREFIX).order_by("name")
    ]


def remove_schedules() -> int:
    """Delete qbo_sync's schedules (queued work stays in the queue). Returns how many were deleted."""
    count, _ = Schedule.objects.filter(name__startswith=PREFIX).delete()
    return count
