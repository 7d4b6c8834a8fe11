"""Per-realm request limiter.

QBO enforces, per realm and app, 500 requests a minute, 10 requests in flight (the current docs also say 10 a
second) and 40 batch calls a minute, and answers a 429 beyond them. Staying under the limits proactively is
much cheaper than backing off 60 s after a 429, so every call the client makes first takes a slot from a
:class:`Throttle`.

The interface is deliberately small so that the shared implementations (database rows, Redis) that live in
``qbo_sync.services`` can implement it too:

* ``acquire(realm_id, kind)`` returns a context manager; entering it blocks (bounded) until a request may
  start, leaving it frees the in-flight slot;
* ``penalize(realm_id, seconds)`` makes every caller for that realm wait after QBO answered 429.

All durations crossing this interface are wall-clock seconds. ``time_scale`` only shrinks the *limit windows*
(the minute and the second): with ``time_scale=20`` "500 a minute" means 500 per 3 real seconds, which lets
tests and the sandbox run a QBO minute in seconds.
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

__all__ = ["InProcessThrottle", "RequestKind", "Throttle", "ThrottleLimits", "default_throttle"]

logger = logging.getLogger(__name__)

RequestKind = Literal["request", "batch"]


class ThrottleLimits:
    """The limits every throttle takes (in-process or shared across processes), checked once."""

    def __init__(self, requests_per_minute: int, max_in_flight: int, batch_per_minute: int,
                 requests_per_second: int | None, time_scale: float, max_wait: float) -> None:
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
    # Completion times of finished calls, within the minute / second windows (appended in time order).
    done: deque[float] = field(default_factory=deque)
    done_recent: deque[float] = field(default_factory=deque)
    batch_done: deque[float] = field(default_factory=deque)
    # Calls started and not finished yet: they count against every window until they finish.
    pending: int = 0
    pending_batch: int = 0
    penalty_until: float = 0.0


class InProcessThrottle(ThrottleLimits):
    """Sliding-window limits plus a semaphore, shared by the threads of one process.

    Correct for one process per realm (scripts, tests, a single worker); several processes need the shared
    limiters of ``qbo_sync.services``. A sliding window is stricter than a fixed minute, so it also satisfies
    a server that counts per calendar minute.

    A call counts against the windows from the moment it starts, and leaves them one window after it
    *finished*. QBO stamps a request somewhere between our send and its answer; stamping our side at the
    answer is the only choice that can never expire before QBO's does, whatever the latency. (Stamping at the
    start lost the race now and then when a request sat in a queue longer than the one that replaced it, and
    each such 429 costs a 60-second pause.) ``slack_seconds`` (QBO seconds, scaled like the windows) adds a
    small margin on top.
    """

    def __init__(
        self,
        requests_per_minute: int = 500,
        max_in_flight: int = 10,
        batch_per_minute: int = 40,
        *,
        requests_per_second: int | None = 10,
        time_scale: float = 1.0,
        slack_seconds: float = 0.25,
        max_wait: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(requests_per_minute, max_in_flight, batch_per_minute, requests_per_second, time_scale,
                         max_wait)
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
    def _window_wait(done: deque[float], pending: int, limit: int, length: float, now: float) -> float:
        """Seconds until one more call fits a window of ``length`` holding ``done`` plus ``pending`` calls."""
        while done and done[0] <= now - length:
            done.popleft()
        excess = len(done) + pending - limit + 1
        if excess <= 0:
            return 0.0
        if excess > len(done):
            return length  # only a call finishing can free a slot; release() wakes the waiters
        return done[excess - 1] + length - now

    def _wait_needed(self, state: _RealmState, now: float, kind: RequestKind) -> float:
        """Seconds until a call of ``kind`` may start (0 if now). Caller holds the lock."""
        waits = [
            state.penalty_until - now,
            self._window_wait(state.done, state.pending, self.requests_per_minute, self._minute, now),
        ]
        if self.requests_per_second:
            waits.append(
                self._window_wait(state.done_recent, state.pending, self.requests_per_second, self._second, now)
            )
        if kind == "batch":
            waits.append(
                self._window_wait(state.batch_done, state.pending_batch, self.batch_per_minute, self._minute, now)
            )
        return max(0.0, *waits)

    def _take_slot(self, realm_id: str, kind: RequestKind, deadline: float) -> None:
        with self._cond:
            state = self._state(realm_id)
            while True:
                now = self._clock()
                wait = self._wait_needed(state, now, kind)
                if wait <= 0:
                    state.pending += 1
                    if kind == "batch":
                        state.pending_batch += 1
                    return
                if now + wait > deadline:
                    raise QboRateLimited(
                        f"local throttle could not grant a {kind} slot for realm {realm_id} within {self.max_wait}s",
                        wait_seconds=wait,
                    )
                # Woken early by penalize() and by finishing calls.
                self._cond.wait(timeout=wait)

    def _finish(self, realm_id: str, kind: RequestKind) -> None:
        with self._cond:
            state = self._realms[realm_id]
            now = self._clock()
            state.pending -= 1
            state.done.append(now)
            state.done_recent.append(now)
            if kind == "batch":
                state.pending_batch -= 1
                state.batch_done.append(now)
            self._cond.notify_all()

    @contextmanager
    def _slot(self, realm_id: str, kind: RequestKind) -> Iterator[None]:
        deadline = self._clock() + self.max_wait
        with self._lock:
            sem = self._state(realm_id).in_flight
        # Concurrency first: the rate slot is taken only when the request can really start.
        if not sem.acquire(timeout=max(0.0, self.max_wait)):
            raise QboRateLimited(
                f"local throttle: {self.max_in_flight} requests already in flight for realm {realm_id}",
                wait_seconds=1.0,
            )
        try:
            self._take_slot(realm_id, kind, deadline)
            try:
                yield
            finally:
                self._finish(realm_id, kind)
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
            return state.pending if state is not None else 0


_default: InProcessThrottle | None = None
_default_lock = threading.Lock()


def default_throttle() -> InProcessThrottle:
    """The process-wide limiter with QBO's production limits, used when a client is given none."""
    global _default
    with _default_lock:
        if _default is None:
            _default = InProcessThrottle()
        return _default
