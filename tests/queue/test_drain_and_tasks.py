"""Drains within their budget, the django-q2 entry points, progress figures, schedules and the subcommands."""

from __future__ import annotations

import datetime as dt
import json
from unittest import mock

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone
from django_q.models import Schedule

from qbo_sync import tasks
from qbo_sync.models import DrainSignal, QboConnection, QueueItem, SyncJob
from qbo_sync.services import progress, queue, schedules, wakeup
from qbo_sync.services.drain import drain
from qbo_sync.services.outcomes import Outcome
from tests.queue.conftest import make_org

pytestmark = pytest.mark.django_db

Status = QueueItem.Status


# --- drain --------------------------------------------------------------------------------------------------------

def test_drain_processes_everything_due_and_reports_counts(org, processor) -> None:
    processor.rule = lambda item: Outcome.failed("bad") if item.object_id == "3" else Outcome.completed()
    queue.create_job(org.pk, SyncJob.Kind.PUSH, "Invoice", range(1, 131), "push")
    report = drain(budget_seconds=60)
    assert report.stopped == "idle" and not report.more_due
    assert (report.chunks, report.claimed, report.completed, report.failed) == (3, 130, 129, 1)
    assert report.organizations == [org.pk]
    assert SyncJob.objects.get().state == SyncJob.State.FAILED


def test_drain_stops_claiming_when_the_next_chunk_would_not_fit_its_budget(org, processor) -> None:
    queue.create_job(org.pk, SyncJob.Kind.PUSH, "Invoice", range(1000), "push")
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        processor.before = lambda items: traveller.shift(10)  # every chunk "takes" 10 s
        report = drain(budget_seconds=35)
    # 10 s, 20 s, 30 s: after the third chunk 5 s remain, less than one chunk: stop, with work left.
    assert report.stopped == "budget" and report.more_due
    assert report.chunks == 3 and report.claimed == 3 * 60
    assert QueueItem.objects.filter(status=Status.PROCESSING).count() == 0  # nothing left half-done


def test_a_processor_that_raises_gets_its_chunk_retried_not_lost(org, processor) -> None:
    def explode(item):
        raise RuntimeError("boom")

    processor.rule = explode
    queue.enqueue(org.pk, "Customer", [1, 2], "push")
    report = drain(budget_seconds=10)
    assert report.retried == 2
    assert set(QueueItem.objects.values_list("status", "attempts", "error_code")) == {
        (Status.PENDING, 1, "processor_error")}


def test_drain_can_be_limited_to_one_organization(db, processor) -> None:
    a, b = make_org(), make_org()
    queue.enqueue(a.pk, "Customer", [1], "push")
    queue.enqueue(b.pk, "Customer", [1], "push")
    report = drain(budget_seconds=10, organization_id=b.pk)
    assert report.organizations == [b.pk] and report.completed == 1


# --- tasks --------------------------------------------------------------------------------------------------------

def test_kick_queues_at_most_one_drain_until_it_starts(db) -> None:
    with mock.patch("django_q.tasks.async_task", return_value="t1") as async_task:
        assert tasks.kick() is True
        assert tasks.kick() is False
        assert async_task.call_count == 1
        args, kwargs = async_task.call_args
        assert args == ("qbo_sync.tasks.drain_task",)
        assert kwargs["task_name"] == kwargs["group"] == tasks.DRAIN_TASK_NAME
        tasks.drain_task()  # the queued drain starts: the next enqueue may queue another
        assert tasks.kick() is True
        assert async_task.call_count == 2


def test_a_failing_broker_does_not_break_the_kick(db) -> None:
    with mock.patch("django_q.tasks.async_task", side_effect=ConnectionError("broker down")):
        assert tasks.kick() is False
    with mock.patch("django_q.tasks.async_task", return_value="t") as async_task:
        assert tasks.kick() is True and async_task.call_count == 1


def test_enqueue_kicks_a_drain_after_the_commit(org, django_capture_on_commit_callbacks) -> None:
    with mock.patch("django_q.tasks.async_task", return_value="t") as async_task:
        with django_capture_on_commit_callbacks(execute=True):
            queue.enqueue(org.pk, "Customer", [1], "push")
            queue.enqueue(org.pk, "Customer", [2], "push")
            assert async_task.call_count == 0
        assert async_task.call_count == 1


def test_drain_task_requeues_itself_while_due_work_remains(org, processor) -> None:
    queue.create_job(org.pk, SyncJob.Kind.PUSH, "Invoice", range(200), "push")
    with mock.patch("django_q.tasks.async_task", return_value="t") as async_task:
        with time_machine.travel(timezone.now(), tick=False) as traveller:
            processor.before = lambda items: traveller.shift(10)
            result = tasks.drain_task(budget_seconds=15)
        assert result["more_due"] and async_task.call_count == 1
        result = tasks.drain_task()
        assert not result["more_due"] and async_task.call_count == 1
    assert QueueItem.objects.filter(status=Status.COMPLETED).count() == 200


def test_nightly_pull_starts_one_pull_per_connected_organization_and_never_twice(db) -> None:
    a, b = make_org(), make_org(QboConnection.Status.NEEDS_REAUTH)
    make_org(QboConnection.Status.DISCONNECTED)
    first = tasks.nightly_pull("payments")
    assert len(first) == 2
    assert set(SyncJob.objects.values_list("organization_id", "kind", "entity_type")) == {
        (a.pk, "pull", "Payment"), (b.pk, "pull", "Payment")}
    assert tasks.nightly_pull("payments") == first  # still running: attached, not started again
    assert QueueItem.objects.filter(operation="pull").count() == 2


# --- progress -----------------------------------------------------------------------------------------------------

def _run_job(org, size: int) -> SyncJob:
    job = queue.create_job(org.pk, SyncJob.Kind.PUSH, "Invoice", range(size), "push")
    _, items = queue.claim_chunk("w", limit=max(1, size // 2))
    outcomes = {i.pk: Outcome.completed() for i in items}
    outcomes[items[0].pk] = Outcome.failed("bad")
    queue.apply_outcomes(items, outcomes)
    job.refresh_from_db()
    return job


@pytest.mark.parametrize("size", [10, 1000])
def test_progress_takes_a_constant_number_of_queries(org, size, django_assert_num_queries) -> None:
    job = _run_job(org, size)
    with django_assert_num_queries(2):  # the items grouped by status (with the rate window's counts), the connection
        figures = progress.job_progress(job)
    assert figures.total == size
    assert figures.counts.completed == size // 2 - 1 and figures.counts.failed == 1
    assert figures.counts.pending == size - size // 2
    assert figures.percent == pytest.approx(100.0 * (size // 2) / size, abs=0.1)
    assert figures.state == SyncJob.State.RUNNING and figures.slow_reason is None


def test_progress_measures_rate_and_eta_and_says_why_it_is_slow(org) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        job = queue.create_job(org.pk, SyncJob.Kind.PUSH, "Invoice", range(300), "push")
        for _ in range(2):  # 120 items in two minutes
            _, items = queue.claim_chunk("w", limit=60)
            traveller.shift(60)
            queue.apply_outcomes(items, {i.pk: Outcome.completed() for i in items})
        job.refresh_from_db()
        figures = progress.job_progress(job)
        assert figures.rate_per_minute == pytest.approx(60.0)
        assert figures.eta_seconds == pytest.approx(180 * 60 / 60.0)

        _, items = queue.claim_chunk("w", limit=5)
        queue.apply_outcomes(items, {i.pk: Outcome.retry("429", code="throttled", retry_after=60) for i in items})
        assert progress.job_progress(job).slow_reason == "throttled"
        QboConnection.objects.filter(organization=org).update(status=QboConnection.Status.NEEDS_REAUTH)
        assert progress.job_progress(job).slow_reason == "waiting for reconnect"


def test_the_eta_is_bounded_by_the_realms_throttle_ceiling(org) -> None:
    with override_settings(QBO_SYNC={"BATCH_CALLS_PER_MINUTE": 1, "BATCH_SIZE": 1, "RATE_LIMIT_PER_MINUTE": 10}):
        with time_machine.travel(timezone.now(), tick=False) as traveller:
            job = queue.create_job(org.pk, SyncJob.Kind.PUSH, "Invoice", range(200), "push")
            _, items = queue.claim_chunk("w", limit=100)
            traveller.shift(60)
            queue.apply_outcomes(items, {i.pk: Outcome.completed() for i in items})
            job.refresh_from_db()
            figures = progress.job_progress(job)
    assert figures.rate_per_minute == pytest.approx(100.0)
    assert figures.throttle_ceiling_per_minute == 10
    assert figures.eta_seconds == pytest.approx(100 / 10 * 60)


def test_queue_counts(org, django_assert_num_queries) -> None:
    queue.enqueue(org.pk, "Customer", [1, 2], "push")
    queue.enqueue(org.pk, "Item", [1], "push", delay=600)
    with django_assert_num_queries(1):
        counts = progress.queue_counts(org.pk)
    assert counts["pending"] == 3 and counts["due"] == 2 and counts["oldest_due_seconds"] is not None
    assert progress.queue_counts(org.pk, "Item")["due"] == 0


# --- schedules ----------------------------------------------------------------------------------------------------

@override_settings(TIME_ZONE="America/New_York")
def test_schedules_install_is_idempotent_with_future_local_times(db) -> None:
    with time_machine.travel(dt.datetime(2030, 3, 9, 12, 0, tzinfo=dt.UTC), tick=False):
        first = schedules.install_schedules()
        rows = {s.name: (s.pk, s.func, s.args, s.schedule_type, s.next_run) for s in Schedule.objects.all()}
        assert schedules.install_schedules() and len(first) == 6
        again = {s.name: (s.pk, s.func, s.args, s.schedule_type, s.next_run) for s in Schedule.objects.all()}
    assert again == rows
    assert set(rows) == {"qbo_sync.drain", "qbo_sync.nightly.payments", "qbo_sync.nightly.customers",
                         "qbo_sync.nightly.items", "qbo_sync.nightly.reconcile", "qbo_sync.nightly.purge"}
    assert rows["qbo_sync.nightly.reconcile"][1:4] == ("qbo_sync.tasks.nightly_reconcile", None, Schedule.DAILY)
    _pk, func, args, kind, next_run = rows["qbo_sync.nightly.payments"]
    assert (func, args, kind) == ("qbo_sync.tasks.nightly_pull", "('payments',)", Schedule.DAILY)
    # 02:00 does not exist in New York on 10 March 2030 (DST starts): the run is at 03:00 EDT, 07:00 UTC.
    assert next_run == dt.datetime(2030, 3, 10, 7, 0, tzinfo=dt.UTC)
    assert rows["qbo_sync.nightly.items"][4] == dt.datetime(2030, 3, 10, 8, 0, tzinfo=dt.UTC)  # 04:00 EDT
    assert rows["qbo_sync.drain"][3] == Schedule.MINUTES
    assert all(row[4] > dt.datetime(2030, 3, 9, 12, 0, tzinfo=dt.UTC) for row in rows.values())

    Schedule.objects.create(name="qbo_sync.drain", func="qbo_sync.tasks.drain_task")  # a stray duplicate
    schedules.install_schedules()
    assert Schedule.objects.filter(name="qbo_sync.drain").count() == 1
    assert rows["qbo_sync.nightly.purge"][1] == "qbo_sync.tasks.nightly_purge"
    assert schedules.remove_schedules() == 6 and not Schedule.objects.exists()


def test_next_daily_run() -> None:
    now = dt.datetime(2030, 1, 1, 1, 59, tzinfo=dt.UTC)
    assert schedules.next_daily_run("02:00", now, "UTC") == dt.datetime(2030, 1, 1, 2, 0, tzinfo=dt.UTC)
    assert schedules.next_daily_run("01:59", now, "UTC") == dt.datetime(2030, 1, 2, 1, 59, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="HH:MM"):
        schedules.next_daily_run("2am", now, "UTC")


# --- subcommands --------------------------------------------------------------------------------------------------

def test_drain_command_prints_a_line_per_chunk(db, processor, capsys) -> None:
    org = make_org(slug="acme")
    queue.create_job(org.pk, SyncJob.Kind.PUSH, "Invoice", range(100), "push")
    call_command("qbo_sync", "drain", "--budget", "30", "--org", "acme")
    out = capsys.readouterr().out
    assert out.count("chunk ") == 2 and "Drained 100 item(s)" in out
    queue.enqueue(org.pk, "Customer", [1], "push")
    call_command("qbo_sync", "drain", "--json")
    assert json.loads(capsys.readouterr().out)["completed"] == 1


def test_commands_reject_bad_input_in_one_line(db) -> None:
    with pytest.raises(CommandError, match="No organization with slug 'nope'"):
        call_command("qbo_sync", "drain", "--org", "nope")
    with pytest.raises(CommandError, match="--budget must be a positive"):
        call_command("qbo_sync", "drain", "--budget", "0")
    with pytest.raises(CommandError):
        call_command("qbo_sync", "schedules", "explode")
    with override_settings(QBO_SYNC={"SCHEDULES": {"invoices": "01:00"}}), pytest.raises(CommandError, match="Unkn"):
        call_command("qbo_sync", "schedules", "install")


def test_retry_command(org, capsys) -> None:
    queue.enqueue(org.pk, "Customer", [1, 2], "push")
    _, items = queue.claim_chunk("w")
    queue.apply_outcomes(items, {items[0].pk: Outcome.failed("bad"), items[1].pk: Outcome.completed()})
    QueueItem.objects.filter(pk=items[1].pk).update(status=Status.DEAD)
    call_command("qbo_sync", "retry", "--org", org.slug)
    assert "Requeued 1 failed item(s)" in capsys.readouterr().out
    call_command("qbo_sync", "retry", "--dead")
    assert "Requeued 1 failed or dead item(s)" in capsys.readouterr().out


def test_schedules_command(db, capsys) -> None:
    call_command("qbo_sync", "schedules", "install")
    assert "Installed 6 schedule(s)" in capsys.readouterr().out
    call_command("qbo_sync", "schedules")
    out = capsys.readouterr().out
    assert "qbo_sync.nightly.payments" in out and "every 1 min" in out
    call_command("qbo_sync", "schedules", "list", "--json")
    assert len(json.loads(capsys.readouterr().out)) == 6
    call_command("qbo_sync", "schedules", "remove")
    assert "Removed 6 schedule(s)" in capsys.readouterr().out


# --- waking up for work due soon (a save's push delay) -------------------------------------------------------------

@pytest.fixture
def fake_clock(monkeypatch):
    """time-machine's clock, stopped; the drain's pauses move it instead of sleeping."""
    from qbo_sync.services import drain as drain_module

    with time_machine.travel(timezone.now(), tick=False) as traveller:
        pauses: list[float] = []
        waiters: list[str] = []

        def pause(seconds: float) -> None:
            pauses.append(seconds)
            waiters.append(DrainSignal.objects.values_list("waiter", flat=True).first() or "")
            traveller.shift(seconds)

        monkeypatch.setattr(drain_module, "_sleep", pause)
        traveller.pauses, traveller.waiters = pauses, waiters
        yield traveller


def test_a_drain_that_finds_nothing_due_waits_for_an_item_due_soon(org, processor, fake_clock) -> None:
    queue.enqueue(org.pk, "Customer", [1], "push", delay=2)  # as a host save does (PUSH_DELAY_SECONDS)
    report = drain(budget_seconds=60)
    assert report.completed == 1 and report.stopped == "idle"
    assert report.waited_seconds == 2 and all(p <= 1 for p in fake_clock.pauses)
    assert DrainSignal.objects.get().waiter == ""  # the role is given back


def test_a_drain_leaves_work_due_later_to_the_next_kick_or_the_minute_schedule(org, processor, fake_clock,
                                                                               settings) -> None:
    settings.QBO_SYNC = {**settings.QBO_SYNC, "DRAIN_WAIT_SECONDS": 10}  # keeps the fake processor
    queue.enqueue(org.pk, "Customer", [1], "push", delay=30)
    report = drain(budget_seconds=60)
    assert report.completed == 0 and report.stopped == "idle" and fake_clock.pauses == []
    assert report.next_due_at == QueueItem.objects.get().next_attempt_at.isoformat()


def test_a_drain_does_not_wait_for_a_retry_backoff(org, processor, fake_clock) -> None:
    processor.rule = lambda item: Outcome.retry("QBO said 500")
    queue.enqueue(org.pk, "Customer", [1], "push")
    report = drain(budget_seconds=60)
    assert report.retried == 1 and report.stopped == "idle" and fake_clock.pauses == []


def test_only_one_drain_waits_and_an_earlier_due_time_takes_the_role_over(org, processor, fake_clock) -> None:
    queue.enqueue(org.pk, "Customer", [1], "push", delay=3)
    other = "other-host:1"
    assert wakeup.hold_wait(other, timezone.now() + dt.timedelta(seconds=2))  # a drain elsewhere waits already
    report = drain(budget_seconds=60)
    assert report.stopped == "idle" and fake_clock.pauses == [] and processor.calls == []  # left to the waiter

    assert wakeup.hold_wait(other, timezone.now() + dt.timedelta(seconds=5))  # the waiter now waits for later work
    report = drain(budget_seconds=60, worker_id="this-host:2")
    assert report.completed == 1 and report.waited_seconds == 3  # the earlier item was worth its own wait
    assert set(fake_clock.waiters) == {"this-host:2"}  # ... and it held the role while waiting


def test_a_drain_limited_to_one_organization_waits_without_keeping_others_from_waiting(db, processor,
                                                                                      fake_clock) -> None:
    a, b = make_org(), make_org()
    queue.enqueue(a.pk, "Customer", [1], "push", delay=2)
    queue.enqueue(b.pk, "Customer", [1], "push", delay=1)
    assert drain(budget_seconds=60, organization_id=a.pk).completed == 1
    assert set(fake_clock.waiters) == {""}  # it did not take the role: a drain of everyone would still wait for b
    assert QueueItem.objects.get(organization=b).status == Status.PENDING


def test_a_dead_waiter_is_replaced(org, processor, fake_clock) -> None:
    assert wakeup.hold_wait("died:1", timezone.now() + dt.timedelta(seconds=1))
    fake_clock.shift(1 + wakeup.WAITER_GRACE_SECONDS + 1)
    queue.enqueue(org.pk, "Customer", [1], "push", delay=2)
    assert drain(budget_seconds=60).completed == 1


def test_the_queued_drain_flag_is_shared_by_every_process(db) -> None:
    """The web process that kicked and the worker that runs the drain do not share memory: clearing the flag in
    the worker must let the web process kick again (it used to skip kicks for 10 s after each one)."""
    from django.core.cache.backends.locmem import LocMemCache

    with mock.patch("django_q.tasks.async_task", return_value="t") as async_task:
        assert tasks.kick() is True
        with mock.patch("qbo_sync.tasks.cache", LocMemCache("worker-process", {}), create=True):
            tasks.drain_task()  # in the worker process
        assert tasks.kick() is True
        assert tasks.kick() is False
        assert async_task.call_count == 2


def test_a_lost_queued_drain_can_be_kicked_again_after_kick_seconds(db) -> None:
    with mock.patch("django_q.tasks.async_task", return_value="t") as async_task, \
            time_machine.travel(timezone.now(), tick=False) as traveller:
        assert tasks.kick() is True
        traveller.shift(tasks.KICK_SECONDS - 1)
        assert tasks.kick() is False
        traveller.shift(2)
        assert tasks.kick() is True
        assert async_task.call_count == 2
