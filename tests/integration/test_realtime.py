"""A host save reaches QuickBooks through the drain its commit kicked, even though the item is due PUSH_DELAY_SECONDS
after the save (defect 5 of the model-based-test issue: the kicked drain used to find nothing due and stop, leaving
the save to the minute schedule)."""

from __future__ import annotations

from unittest import mock

import pytest
import time_machine
from django.utils import timezone

from qbo_sync import tasks
from qbo_sync.models import EntityMapping, QueueItem
from qbo_sync.services import drain as drain_module
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_save_with_nothing_else_due_is_sent_by_the_drain_its_commit_kicked(org, accountant, settings,
                                                                               monkeypatch) -> None:
    settings.QBO_SYNC = {**settings.QBO_SYNC, "PUSH_DELAY_SECONDS": 2}
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        monkeypatch.setattr(drain_module, "_sleep", traveller.shift)
        with mock.patch("django_q.tasks.async_task", return_value="t") as async_task:
            customer = CustomerFactory(organization=org, display_name="Kicked Kites")  # commits: kick on commit
            item = QueueItem.objects.get(object_id=str(customer.pk))
            assert (item.next_attempt_at - timezone.now()).total_seconds() == 2  # not due when the drain starts
            assert async_task.call_count == 1 and async_task.call_args.args == (tasks.DRAIN_TASK,)

            result = tasks.drain_task()  # what the worker runs for that kick, before the item is due

        assert result["completed"] == 1 and result["waited_seconds"] == 2
        assert async_task.call_count == 1  # nothing left for another drain, or for the minute schedule
    mapping = EntityMapping.objects.get(entity_type="Customer", object_id=str(customer.pk))
    assert accountant.read("Customer", mapping.qbo_id)["DisplayName"] == "Kicked Kites"
