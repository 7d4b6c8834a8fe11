"""A job whose work sits due with no worker draining it says so, instead of staying "pending" without a word."""

from __future__ import annotations

import datetime as dt

import time_machine
from django.utils import timezone

from qbo_sync.models import SyncJob
from qbo_sync.services import progress, queue
from qbo_sync.services.outcomes import Outcome
from tests.queue.conftest import make_org


def test_a_job_nobody_drains_says_no_worker_is_running(db) -> None:
    org = make_org()
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        job = queue.create_job(org.pk, SyncJob.Kind.PUSH, "Invoice", range(5), "push")
        assert progress.job_progress(job).slow_reason is None  # just queued
        traveller.shift(60)
        assert progress.job_progress(job).slow_reason is None  # the minute drain may not have run yet
        traveller.shift(90)
        job.refresh_from_db()
        assert progress.job_progress(job).slow_reason == "no worker running"

        _, items = queue.claim_chunk("w", limit=2)  # a worker shows up
        assert progress.job_progress(job).slow_reason is None
        queue.apply_outcomes(items, {i.pk: Outcome.completed() for i in items})
        traveller.shift(30)
        assert progress.job_progress(job).slow_reason is None
        traveller.shift(dt.timedelta(minutes=3).total_seconds())
        assert progress.job_progress(job).slow_reason == "no worker running"
