"""Run by test_cluster.py in a fresh process next to a running ``manage.py qcluster``: seed a job, wait for it.

Prints one JSON line: the job's state, its items' statuses and the seconds it took. Exits 0 even on a timeout
(the test asserts on the figures). With ``realtime`` as third argument it plays a web process instead: ``size``
host saves one after another, each enqueued PUSH_DELAY_SECONDS ahead as the save signal does, each waited for.
"""

from __future__ import annotations

import json
import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "batchly.settings")
django.setup()

from collections import Counter  # noqa: E402

from qbo_sync.models import QboConnection, QueueItem, SyncJob  # noqa: E402
from qbo_sync.services.queue import create_job, enqueue  # noqa: E402
from tests.factories import OrganizationFactory  # noqa: E402


def main(size: int, timeout: float) -> None:
    org = OrganizationFactory(slug=f"cluster-{os.getpid()}")
    QboConnection.objects.create(organization=org, realm_id=f"77{os.getpid()}", status="connected")
    started = time.monotonic()
    # Autocommit: create_job's transaction commits, its on_commit kick queues a drain task for the cluster.
    job = create_job(org.pk, SyncJob.Kind.PUSH, "Invoice", range(size), "push", description="cluster test")
    deadline = started + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_finished:
            break
        time.sleep(0.25)
    statuses = Counter(QueueItem.objects.filter(job=job).values_list("status", flat=True))
    print(json.dumps({"job": job.pk, "state": job.state, "statuses": statuses,
                      "seconds": round(time.monotonic() - started, 2)}))


def realtime(saves: int, timeout: float) -> None:
    org = OrganizationFactory(slug=f"cluster-rt-{os.getpid()}")
    QboConnection.objects.create(organization=org, realm_id=f"78{os.getpid()}", status="connected")
    started = time.monotonic()
    deadline = started + timeout
    for n in range(saves):
        # What the save signal does on commit (qbo_sync/receivers.py); the kick follows this commit.
        enqueue(org.pk, "Customer", [str(n)], "push", delay=2)
        item = QueueItem.objects.get(organization=org, object_id=str(n))
        while time.monotonic() < deadline and item.status != "completed":
            time.sleep(0.1)
            item.refresh_from_db()
    statuses = Counter(QueueItem.objects.filter(organization=org).values_list("status", flat=True))
    print(json.dumps({"state": "completed" if statuses == {"completed": saves} else "waiting",
                      "statuses": statuses, "seconds": round(time.monotonic() - started, 2)}))


if __name__ == "__main__":
    if sys.argv[3:] == ["realtime"]:
        realtime(int(sys.argv[1]), float(sys.argv[2]))
    else:
        main(int(sys.argv[1]), float(sys.argv[2]))
