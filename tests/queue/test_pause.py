"""Pausing a connection: work keeps queueing, nothing is claimed (so nothing is sent or pulled) until it resumes."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from qbo_sync.models import QboConnection, QueueItem, SyncJob, SyncLog
from qbo_sync.services import pause, queue, reconcile
from qbo_sync.services.jobs import QboInputError
from qbo_sync.services.progress import job_progress
from tests.queue.conftest import make_org


def test_a_paused_organization_queues_but_nothing_is_claimed_until_it_resumes(db) -> None:
    paused_org, other = make_org(slug="paused"), make_org()
    pause.pause(paused_org.pk, "  month-end   close ")
    queue.enqueue(paused_org.pk, "Customer", [1, 2], "push", kick=False)
    job = queue.create_job(paused_org.pk, SyncJob.Kind.PUSH, "Invoice", range(3), "push")
    queue.enqueue(other.pk, "Customer", [9], "push", kick=False)

    org_id, items = queue.claim_chunk()
    assert org_id == other.pk and [i.object_id for i in items] == ["9"]  # the other tenant is served
    assert queue.claim_chunk() == (None, [])
    assert not queue.has_due_work(paused_org.pk)
    assert QueueItem.objects.filter(organization=paused_org, status="pending").count() == 5  # kept, not lost

    progress = job_progress(job)
    assert (progress.slow_reason, progress.paused, progress.pause_reason, progress.why_slow) == (
        "paused", True, "month-end close", "paused: month-end close")

    with mock.patch("qbo_sync.services.wakeup.kick") as kick, pytest.MonkeyPatch.context() as mp:
        mp.setattr("django.db.transaction.on_commit", lambda func: func())
        pause.resume(paused_org.pk)
    kick.assert_called_once()
    org_id, items = queue.claim_chunk()
    assert org_id == paused_org.pk and len(items) == 5
    assert job_progress(job).paused is False
    assert list(SyncLog.objects.filter(organization=paused_org).values_list("event", flat=True)
                .order_by("pk")) == ["paused", "resumed"]


@pytest.mark.parametrize("reason", ["", "   ", "x" * 256, "bad\x00byte"])
def test_a_pause_needs_a_readable_reason(db, reason) -> None:
    org = make_org()
    with pytest.raises(QboInputError) as caught:
        pause.pause(org.pk, reason)
    assert caught.value.field == "reason"
    assert QboConnection.objects.get(organization=org).paused_at is None


def test_pause_without_a_connection_is_a_clear_error(db) -> None:
    from tests.factories import OrganizationFactory

    with pytest.raises(QboInputError, match="no QuickBooks connection"):
        pause.pause(OrganizationFactory().pk, "close")


def test_nightly_reconciliation_skips_a_paused_organization(db) -> None:
    paused_org, other = make_org(), make_org()
    pause.pause(paused_org.pk, "close")
    def books_match(org_id, repair=False):
        return reconcile.Report(organization_id=org_id, realm_id="", checked_at=timezone.now())

    with mock.patch.object(reconcile, "reconcile", side_effect=books_match) as run:
        reconcile.reconcile_all()
    assert [c.args[0] for c in run.call_args_list] == [other.pk]


def test_pause_and_resume_commands_and_status(db, capsys) -> None:
    make_org(slug="acme")
    call_command("qbo_sync", "pause", "--org", "acme", "--reason", "month-end close")
    assert "Paused" in capsys.readouterr().out
    call_command("qbo_sync", "status", "--org", "acme")
    out = capsys.readouterr().out
    assert "PAUSED since" in out and "month-end close" in out
    with pytest.raises(CommandError, match="Say why"):
        call_command("qbo_sync", "pause", "--org", "acme", "--reason", " ")
    call_command("qbo_sync", "resume", "--org", "acme")
    assert "Resumed" in capsys.readouterr().out
    call_command("qbo_sync", "status", "--org", "acme")
    assert "PAUSED" not in capsys.readouterr().out
