"""Run by test_schedules_cluster.py in a fresh process against the clusters' database; prints one JSON line.

``seed N``: N connected organizations, qbo_sync's schedules installed, the customers' nightly made due now.
``wait SECONDS``: wait until the nightly's django-q2 task saved its result; prints whether it did.
``probe SECONDS``: add a one-off django-q2 schedule due now and wait until a scheduler pass fired (deleted) it.
``report SLOT``: what the nightly slot left behind: its django-q2 tasks, the pull jobs per organization, next_run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from zoneinfo import ZoneInfo

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "batchly.settings")
django.setup()

from collections import Counter  # noqa: E402

from django.conf import settings  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_q.models import OrmQ, Schedule, Task  # noqa: E402

from qbo_sync.models import QboConnection, SyncJob  # noqa: E402
from qbo_sync.services.schedules import install_schedules, nightly_name  # noqa: E402
from tests.factories import OrganizationFactory  # noqa: E402

NAME = nightly_name("customers")
PROBE = "schedule-test-probe"


def seed(count: int) -> dict:
    orgs = []
    for n in range(count):
        org = OrganizationFactory(slug=f"nightly-{os.getpid()}-{n}")
        QboConnection.objects.create(organization=org, realm_id=f"79{os.getpid()}{n}", status="connected")
        orgs.append(org.pk)
    install_schedules()
    slot = (timezone.now() - dt.timedelta(seconds=1)).replace(microsecond=0)
    Schedule.objects.filter(name=NAME).update(next_run=slot)
    return {"organizations": orgs, "slot": slot.isoformat()}


def wait(timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not Task.objects.filter(group=NAME).exists():
        time.sleep(0.1)
    return {"done": Task.objects.filter(group=NAME).exists()}


def probe(timeout: float) -> dict:
    Schedule.objects.create(name=PROBE, func="math.floor", args="1", schedule_type=Schedule.ONCE, repeats=-1,
                            next_run=timezone.now() - dt.timedelta(seconds=1))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and Schedule.objects.filter(name=PROBE).exists():
        time.sleep(0.1)
    return {"fired": not Schedule.objects.filter(name=PROBE).exists()}


def report(slot: str) -> dict:
    schedule = Schedule.objects.get(name=NAME)
    zone = ZoneInfo(settings.TIME_ZONE)
    slot_local = dt.datetime.fromisoformat(slot).astimezone(zone).replace(tzinfo=None)
    jobs = Counter(SyncJob.objects.filter(kind=SyncJob.Kind.PULL, entity_type="Customer")
                   .values_list("organization_id", flat=True))
    return {
        "tasks": [{"id": t.id, "success": t.success} for t in Task.objects.filter(group=NAME)],
        "queued": sum(1 for q in OrmQ.objects.all() if q.task().get("group") == NAME),
        "schedule_task": schedule.task,
        "jobs_per_org": {str(org): n for org, n in jobs.items()},
        "next_run_local": schedule.next_run.astimezone(zone).replace(tzinfo=None).isoformat(),
        "next_day_local": (slot_local + dt.timedelta(days=1)).isoformat(),
        "probe_left": Schedule.objects.filter(name=PROBE).exists(),
    }


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    result = {"seed": lambda: seed(int(rest[0])), "wait": lambda: wait(float(rest[0])),
              "probe": lambda: probe(float(rest[0])), "report": lambda: report(rest[0])}[command]()
    print(json.dumps(result))
