"""Dispatch a claimed chunk of queue items to the entity rules (push / pull / void).

``process_items(organization_id, items) -> {item.pk: Outcome}`` is the seam between the queue machinery
(``services/queue.py``, ``services/drain.py``) and the sync rules (``services/push.py``, ``services/pull.py``).
It never raises for a single item's problem: every item gets an Outcome.

What runs is ``QBO_SYNC["PROCESSOR"]`` (default: the sync rules, ``services.sync.process_chunk``). Tests and
benchmarks that want a stand-in for QuickBooks set that setting (``override_settings``, or the settings module of
a process they start); production code has no other switch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from qbo_sync.conf import qbo_settings
from qbo_sync.services.outcomes import Outcome

if TYPE_CHECKING:
    from qbo_sync.models import QueueItem


def process_items(organization_id: int, items: Sequence[QueueItem]) -> dict[int, Outcome]:
    processor = qbo_settings.PROCESSOR
    result: dict[int, Outcome] = processor(organization_id, items)
    return result
