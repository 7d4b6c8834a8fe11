"""Retention: the nightly purge deletes what is past its time and never anything still owed to QuickBooks."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone

from qbo_sync import tasks
from qbo_sync.models import QueueItem, RefusalCount, SyncJob, SyncLog, WebhookEvent
from qbo_sync.services import queue
from qbo_sync.services.retention import purge
from tests.queue.conftest import make_org

Status = QueueItem.Status


def _age(qs, days: int, *fields: str) -> None:
    when = timezone.now() - dt.timedelta(days=days)
    qs.update(**{name: when for name in fields})


def _history(org) -> dict[str, object]:
    """Old and new jobs, real-time items, log rows and webhook events of one organization."""
    old_done = queue.create_job(org.pk, SyncJob.Kind.PUSH, "Invoice", range(5), "push")
    old_done.items.update(status=Status.COMPLETED)
    SyncJob.objects.filter(pk=old_done.pk).update(state=SyncJob.State.COMPLETED)
    old_failed = queue.create_job(org.pk, SyncJob.Kind.PUSH, "Invoice", range(10, 13), "push")
    old_failed.items.update(status=Status.DEAD)
    SyncJob.objects.filter(pk=old_failed.pk).update(state=SyncJob.State.FAILED)
    new_done = queue.create_job(org.pk, SyncJob.Kind.PUSH, "Invoice", range(20, 22), "push")
    new_done.items.update(status=Status.COMPLETED)
    SyncJob.objects.filter(pk=new_done.pk).update(state=SyncJob.State.COMPLETED, finished_at=timezone.now())
    _age(SyncJob.objects.filter(pk__in=[old_done.pk, old_failed.pk]), 40, "finished_at")

    queue.enqueue(org.pk, "Customer", [1, 2, 3], "push", kick=False)
    QueueItem.objects.filter(job__isnull=True, object_id__in=["1", "2"]).update(status=Status.COMPLETED)
    pending_old = QueueItem.objects.get(job__isnull=True, object_id="3")  # still owed to QuickBooks
    _age(QueueItem.objects.filter(job__isnull=True), 40, "updated_at")

    SyncLog.objects.create(organization=org, event="old")
    _age(SyncLog.objects.filter(event="old"), 100, "created_at")
    SyncLog.objects.create(organization=org, event="new", job=old_done)
    WebhookEvent.objects.create(realm_id="r", entity="Customer", qbo_id="1", operation="Update")
    _age(WebhookEvent.objects.all(), 40, "received_at")
    WebhookEvent.objects.create(realm_id="r", entity="Customer", qbo_id="2", operation="Update")
    now = timezone.now().replace(second=0, microsecond=0)
    RefusalCount.objects.create(endpoint="webhooks", reason="signature", minute=now - dt.timedelta(days=40), count=500)
    RefusalCount.objects.create(endpoint="webhooks", reason="signature", minute=now, count=3)
    return {"old_done": old_done, "old_failed": old_failed, "new_done": new_done, "pending_old": pending_old}


def test_purge_deletes_only_what_is_past_its_retention(db) -> None:
    made = _history(make_org())

    counted = purge(dry_run=True)
    assert counted.deleted == {"queue_items": 7, "jobs": 1, "sync_log": 1, "webhook_events": 1,
                               "webhook_refusals": 1}
    assert QueueItem.objects.count() == 13  # a dry run deletes nothing

    report = purge()
    assert report.deleted == counted.deleted
    assert set(SyncJob.objects.values_list("pk", flat=True)) == {made["old_failed"].pk, made["new_done"].pk}
    # Failed and dead work, a young job and pending real-time work all stay.
    assert QueueItem.objects.filter(job=made["old_failed"]).count() == 3
    assert QueueItem.objects.filter(job=made["new_done"]).count() == 2
    assert QueueItem.objects.filter(pk=made["pending_old"].pk, status=Status.PENDING).exists()
    # The purged job's log row keeps its text; only its job link is cleared.
    assert list(SyncLog.objects.values_list("event", "job")) == [("new", None)]
    assert list(WebhookEvent.objects.values_list("qbo_id", flat=True)) == ["2"]
    assert list(RefusalCount.objects.values_list("count", flat=True)) == [3]
    assert purge().deleted == {"queue_items": 0, "jobs": 0, "sync_log": 0, "webhook_events": 0,
                                 "webhook_refusals": 0}


@override_settings(QBO_SYNC={"RETENTION_DAYS": {"sync_log": None, "jobs": 0}})
def test_none_or_zero_keeps_a_kind_forever(db) -> None:
    _history(make_org())
    report = purge()
    assert report.deleted == {"webhook_events": 1, "webhook_refusals": 1}
    assert report.cutoffs["sync_log"] is None and report.cutoffs["jobs"] is None


@pytest.mark.parametrize("value", [{"logs": 3}, {"jobs": -1}, {"jobs": "30"}, {"jobs": True}])
def test_bad_retention_settings_are_one_clear_line(db, value) -> None:
    with override_settings(QBO_SYNC={"RETENTION_DAYS": value}), pytest.raises(CommandError, match="RETENTION_DAYS"):
        call_command("qbo_sync", "purge")


def test_purge_command_and_nightly_task(db, capsys) -> None:
    _history(make_org())
    call_command("qbo_sync", "purge", "--dry-run")
    assert capsys.readouterr().out.strip() == (
        "Would delete 7 queue items, 1 jobs, 1 sync log, 1 webhook events, 1 webhook refusals.")
    call_command("qbo_sync", "purge", "--json")
    assert json.loads(capsys.readouterr().out)["deleted"]["queue_items"] == 7
    assert tasks.nightly_purge()["deleted"] == {"queue_items": 0, "jobs": 0, "sync_log": 0, "webhook_events": 0,
                                 "webhook_refusals": 0}
