"""Concurrent workers on PostgreSQL (SELECT ... FOR UPDATE SKIP LOCKED): no item is ever claimed twice."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from qbo_sync.models import QueueItem, SyncJob
from qbo_sync.services import queue
from qbo_sync.services.outcomes import Outcome
from tests.queue.conftest import make_org


@pytest.mark.postgres
def test_concurrent_workers_never_claim_the_same_item(transactional_db) -> None:
    orgs = [make_org() for _ in range(3)]
    for org in orgs:
        queue.create_job(org.pk, SyncJob.Kind.PUSH, "Invoice", range(400), "push")
    claimed: Counter[int] = Counter()
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            while True:
                _, items = queue.claim_chunk(name, limit=25)
                if not items:
                    return
                with lock:
                    claimed.update(item.pk for item in items)
                queue.apply_outcomes(items, {item.pk: Outcome.completed() for item in items})
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(claimed) == 1200 and set(claimed.values()) == {1}
    assert QueueItem.objects.filter(status=QueueItem.Status.COMPLETED).count() == 1200
    assert set(SyncJob.objects.values_list("state", flat=True)) == {SyncJob.State.COMPLETED}
