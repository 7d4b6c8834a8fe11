"""Echo suppression: a change qbo_sync writes to a host row (a pull) must not come back as a push.

While :func:`applying_qbo_changes` is active in a thread, the host-change receivers enqueue nothing. The snapshot
check in ``push.py`` (host value equals the last-synced base: nothing to send) is the second line of defence.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_state = threading.local()


@contextmanager
def applying_qbo_changes() -> Iterator[None]:
    depth = getattr(_state, "depth", 0)
    _state.depth = depth + 1
    try:
        yield
    finally:
        _state.depth = depth


def is_applying_qbo_changes() -> bool:
    return getattr(_state, "depth", 0) > 0
