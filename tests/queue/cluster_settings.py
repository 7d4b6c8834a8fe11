"""The demo host's settings for the django-q2 cluster test_cluster.py starts: the sync rules replaced by a
processor that completes every item (``QBO_SYNC["PROCESSOR"]``), so nothing leaves the machine."""

from batchly.settings import *  # noqa: F403

QBO_SYNC = {**QBO_SYNC, "PROCESSOR": "tests.queue.processors.complete_all"}  # noqa: F405
