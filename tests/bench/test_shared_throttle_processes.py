"""Two real worker processes drain one realm's push job: the shared (database) throttle keeps them together under
the sandbox's limits, so the sandbox answers no 429 at all, and every invoice lands exactly once.

tests/connection/test_ratelimit.py covers the limiter with two instances in one process (threads); this test forks
two processes that run the whole drain (claims, batches and single writes sent concurrently by push.send)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections

from qbo_sync.models import SyncJob
from qbo_sync.sandbox import Sandbox
from qbo_sync.services import jobs
from qbo_sync.services.drain import drain
from qbo_sync.services.ratelimit import reset_throttles
from qbo_sync.services.sessions import close_sessions
from tests.connection.conftest import connect_realm, qbo_settings_for, shared_db  # noqa: F401 - a fixture
from tests.factories import CustomerFactory, InvoiceFactory, ItemFactory, OrganizationFactory

TIME_SCALE = 30.0  # a QBO minute lasts two seconds
LIMITS = {"rate_limit": 40, "concurrency": 3, "batch_rate": 3}


@pytest.fixture
def limited_sandbox(settings: Any) -> Iterator[Sandbox]:
    sandbox = Sandbox(time_scale=TIME_SCALE, latency_ms=(20, 60), **LIMITS)
    sandbox.start()
    for name, value in qbo_settings_for(sandbox, TIME_SCALE=TIME_SCALE, THROTTLE_BACKEND="database",
                                        PUSH_DELAY_SECONDS=0, CHUNK_SIZE=40,
                                        RATE_LIMIT_PER_MINUTE=LIMITS["rate_limit"],
                                        MAX_CONCURRENT_REQUESTS=LIMITS["concurrency"],
                                        BATCH_CALLS_PER_MINUTE=LIMITS["batch_rate"]).items():
        setattr(settings, name, value)
    yield sandbox
    sandbox.stop()
    close_sessions()
    reset_throttles()


def _worker(job_id: int, results: Any) -> None:
    reset_throttles()  # this process's own limiter instance; only the database is shared
    claimed = 0
    try:
        while SyncJob.objects.filter(pk=job_id, state__in=["pending", "running"]).exists():
            claimed += drain(budget_seconds=30).claimed
    finally:
        connections.close_all()
        results.put(claimed)


@pytest.mark.slow
def test_two_worker_processes_stay_under_the_realm_limits_together(limited_sandbox: Sandbox,
                                                                    shared_db: Any) -> None:  # noqa: F811
    realm = limited_sandbox.create_realm()
    org = OrganizationFactory()
    connect_realm(limited_sandbox, realm, organization=org)
    customers = [CustomerFactory(organization=org) for _ in range(3)]
    items = [ItemFactory(organization=org) for _ in range(2)]
    invoices = [InvoiceFactory(organization=org, customer=customers[n % 3], lines=0) for n in range(160)]
    from batchly.models import Invoice, InvoiceLine

    InvoiceLine.objects.bulk_create([InvoiceLine(invoice=inv, item=items[n % 2], description="x", quantity=1,
                                                 unit_price=10, position=0) for n, inv in enumerate(invoices)])
    Invoice.objects.filter(pk__in=[i.pk for i in invoices]).update(subtotal=10, total=10, amount_due=10)
    job = jobs.start_push(org.pk, "Invoice", [i.pk for i in invoices])
    connections.close_all()
    close_sessions()
    reset_throttles()
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(job.pk, results)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    claimed = sorted(results.get(timeout=5) for _ in workers)

    job.refresh_from_db()
    from qbo_sync.models import QueueItem

    errors = set(QueueItem.objects.filter(job=job).exclude(status="completed").values_list("last_error", flat=True))
    assert not errors, errors
    assert job.state == SyncJob.State.COMPLETED
    assert all(w.exitcode == 0 for w in workers)
    assert sum(claimed) >= 160 and min(claimed) > 0, claimed  # both processes did part of the work
    stats = limited_sandbox.stats(realm)
    assert stats["throttled_total"] == 0, stats["throttled"]
    assert stats["requests"].get("create", 0) > 0 and stats["requests"].get("batch", 0) > 0  # both kinds used
    assert stats["entities"]["Invoice"] == 160  # each exactly once
