"""Dispatch a claimed chunk of queue items to the entity rules (push / pull / void).

``process_items(organization_id, items) -> {item.pk: Outcome}`` is the seam between the queue machinery
(``services/queue.py``, ``services/drain.py``) and the sync rules (``services/push.py``, ``services/pull.py``).
It never raises for a single item's problem: every item gets an Outcome.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from qbo_sync.services.outcomes import Outcome

if TYPE_CHECKING:
    from qbo_sync.models import QueueItem

#: Tests and benchmarks may swap the processor (``set_processor``); production uses the sync rules.
_processor = None


def set_processor(func) -> None:  # type: ignore[no-untyped-def]
    global _processor
    _processor = func


#: Test hook: a dotted path in this environment variable replaces the sync rules in a process that cannot call
#: ``set_processor`` (the django-q2 cluster a test starts as a subprocess). Never set it in production.
PROCESSOR_ENV = "QBO_SYNC_PROCESSOR"


def process_items(organization_id: int, items: Sequence[QueueItem]) -> dict[int, Outcome]:
    if _processor is None and os.environ.get(PROCESSOR_ENV):
        from django.utils.module_loading import import_string

        set_processor(import_string(os.environ[PROCESSOR_ENV]))
    if _processor is not None:
        return _processor(organization_id, items)
    from qbo_sync.services.sync import process_chunk

    return process_chunk(organization_id, items)
