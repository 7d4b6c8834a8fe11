"""The demo host's settings for the django-q2 cluster test_cluster.py starts: the sync rules replaced by a
processor that completes every item (``QBO_SYNC["PROCESSOR"]``), so nothing leaves the machine."""

import os

from batchly.settings import *  # noqa: F403

QBO_SYNC = {**QBO_SYNC, "PROCESSOR": "tests.queue.processors.complete_all"}  # noqa: F405

# The schedules test (test_schedules_cluster.py) wants the scheduler's first pass at once: django-q2's guard runs
# the scheduler when its counter of seconds reaches 30, so a 30 s guard cycle runs it in the first loop.
if _guard_cycle := os.environ.get("QBO_TEST_GUARD_CYCLE"):
    Q_CLUSTER = {**Q_CLUSTER, "guard_cycle": float(_guard_cycle)}  # noqa: F405
