"""Per-realm request limiter.

QBO enforces, per realm and app, 500 requests a minute, 10 requests in flight (the current docs also say 10 a
second) and 40 batch calls a minute, and answers a 429 beyond them. Staying under the limits proactively is
much
cheaper than backing off 60 s after a 429, so every call the client makes first takes a slot from a
:class:`Throttle`.

The interface is deliberately small so that the shared implementations (database rows, Redis) that live in
``qbo_sync.services`` can implement it too:

* ``acquire(realm_id, kind)`` returns a context manager; entering it blocks (bounded) until a request may
  start,
  leaving it frees the in-flight slot;
* ``penalize(realm_id, seconds)`` makes every caller for that realm wait after QBO answered 429.

All durations crossing this interface are wall-clock seconds. ``time_scale`` only shrinks the *limit
windows* (the
minute and the second): with ``time_scale=20`` "500 a minute" means 500 per 3 real seconds, which lets tests
and
the sandbox run a QBO minute in seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from qbo_sync.exceptions import QboRateLimited

__all__ = ["InProcessThrottle", "RequestKind", "Throttle", "default_throttle"]

logger = logging.getLogger(__name__)

RequestKind = Literal["request", "batch"]


@runtime_checkable
class Throttle(Protocol):
    """What the HTTP client needs from a limiter. Implementations must be safe to share between threads."""

    def acquire(self, realm_id: str, kind: RequestKind = "request") -> AbstractContextManager[None]:
        """Block until a call of ``kind`` may start for ``realm_id``; the context covers the call in flight.

        Raises :class:`~qbo_sync.exceptions.QboRateLimited` if no slot is free within the implementation's
        bound.
        """
        ...

    def penalize(self, realm_id: str, seconds: float) -> None:
        """QBO answered 429: no new call for ``realm_id`` may start for ``seconds``."""
        ...


@dataclass
class _RealmState:
    in_flight: threading.BoundedSemaphore
    starts: deque[float] = field(default_factory=deque)  # start times within the minute window
    recent: deque[float] = field(default_factory=deque)  # start times within the second window
    batch_starts: deque[float] = field(default_factory=deque)
    penalty_until: float = 0.0
    active: int = 0


class InProcessThrottle:
    """Sliding-window limits plus a semaphore, shared by the threads of one process.

    Correct for one process per realm (scripts, tests, a single worker). Several processes need the shared
    limiters of ``qbo_sync.services``. A sliding window is stricter than a fixed minute, so it also
    satisfies a
    server that counts per calendar minute. ``slack_seconds`` (in QBO seconds, scaled like the windows)
    widens the
    windows a little, because QBO stamps a request when it arrives, a moment after we stamped it.
    """

    def __init__(
        self,
        requests_per_minute: int = 500,
        max_in_flight: int = 10,
        batch_per_minute: int = 40,
        *,
        requests_per_second: int | None = 10,
        time_scale: float = 1.0,
        slack_seconds: float = 0.5,
        max_wait: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if requests_per_minute < 1 or max_in_flight < 1 or batch_per_minute < 1:
            raise ValueError("throttle limits must be positive")
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.requests_per_minute = requests_per_minute
        self.max_in_flight = max_in_flight
        self.batch_per_minute = batch_per_minute
        self.requests_per_second = requests_per_second
        self.time_scale = time_scale
        self.max_wait = max_wait
        self._minute = (60.0 + slack_seconds) / time_scale
        self._second = (1.0 + slack_seconds / 60.0) / time_scale
        self._clock = clock
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._realms: dict[str, _RealmState] = {}

    def _state(self, realm_id: str) -> _RealmState:
        state = self._realms.get(realm_id)
        if state is None:
            state = _RealmState(in_flight=threading.BoundedSemaphore(self.max_in_flight))
            self._realms[realm_id] = state
        return state

    @staticmethod
    def _expire(window: deque[float], now: float, length: float) -> None:
        while window and window[0] <= now - length:
            window.popleft()

    def _wait_needed(self, state: _RealmState, now: float, kind: RequestKind) -> float:
        """Seconds until a call of ``kind`` may start (0 if now). Caller holds the lock."""
        self._expire(state.starts, now, self._minute)
        self._expire(state.recent, now, self._second)
        self._expire(state.batch_starts, now, self._minute)
        waits = [state.penalty_until - now]
        if len(state.starts) >= self.requests_per_minute:
            waits.append(state.starts[-self.requests_per_minute] + self._minute - now)
        if self.requests_per_second and len(state.recent) >= self.requests_per_second:
            waits.append(state.recent[-self.requests_per_second] + self._second - now)
        if kind == "batch" and len(state.batch_starts) >= self.batch_per_minute:
            waits.append(state.batch_starts[-self.batch_per_minute] + self._minute - now)
        return max(0.0, *waits)

    def _take_slot(self, realm_id: str, kind: RequestKind, deadline: float) -> None:
        with self._cond:
            state = self._state(realm_id)
            while True:
                now = self._clock()
                wait = self._wait_needed(state, now, kind)
                if wait <= 0:
                    state.starts.append(now)
                    state.recent.append(now)
                    if kind == "batch":
                        state.batch_starts.append(now)
                    return
                if now + wait > deadline:
                    raise QboRateLimited(
                        f"local throttle could not grant a {kind} slot for realm {realm_id} within {self.max_wait}s",
                        wait_seconds=wait,
                    )
                # Woken early by penalize()/release so that a new penalty is seen at once.
                self._cond.wait(timeout=wait)

    @contextmanager
    def _slot(self, realm_id: str, kind: RequestKind) -> Iterator[None]:
        deadline = self._clock() + self.max_wait
        with self._lock:
            sem = self._state(realm_id).in_flight
        # Concurrency first: the rate slot is stamped only when the request can really start.
        if not sem.acquire(timeout=max(0.0, self.max_wait)):
            raise QboRateLimited(
                f"local throttle: {self.max_in_flight} requests already in flight for realm {realm_id}",
                wait_seconds=1.0,
            )
        try:
            self._take_slot(realm_id, kind, deadline)
            with self._lock:
                self._realms[realm_id].active += 1
            try:
                yield
            finally:
                with self._lock:
                    self._realms[realm_id].active -= 1
        finally:
            sem.release()

    def acquire(self, realm_id: str, kind: RequestKind = "request") -> AbstractContextManager[None]:
        if kind not in ("request", "batch"):
            raise ValueError(f"unknown request kind {kind!r}")
        return self._slot(realm_id, kind)

    def penalize(self, realm_id: str, seconds: float) -> None:
        with self._cond:
            state = self._state(realm_id)
            until = self._clock() + max(0.0, seconds)
            if until > state.penalty_until:
                state.penalty_until = until
                logger.info("QBO throttle: realm %s paused for %.2fs after a 429", realm_id, seconds)
            self._cond.notify_all()

    def in_flight(self, realm_id: str) -> int:
        """Calls currently holding a slot (for tests and diagnostics)."""
        with self._lock:
            state = self._realms.get(realm_id)
            return state.active if state is not None else 0


_default: InProcessThrottle | None = None
_default_lock = threading.Lock()


def default_throttle() -> InProcessThrottle:
    """The process-wide limiter with QBO's production limits, used when a client is given none."""
    global _default
    with _default_lock:
        if _default is None:
            _default = InProcessThrottle()
        return _default
