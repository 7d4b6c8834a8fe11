"""The in-process limiter: windows, batch limit, concurrency, penalties. Deterministic via a fake clock."""

from __future__ import annotations

import threading

import pytest

from qbo_sync.client import InProcessThrottle, Throttle
from qbo_sync.exceptions import QboRateLimited


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_implements_the_protocol() -> None:
    assert isinstance(InProcessThrottle(), Throttle)


def test_requests_per_minute_window() -> None:
    clock = Clock()
    t = InProcessThrottle(5, 10, 40, requests_per_second=None, max_wait=0, slack_seconds=0, clock=clock)
    for _ in range(5):
        with t.acquire("r1"):
            pass
    with pytest.raises(QboRateLimited) as info, t.acquire("r1"):
        pass
    assert info.value.wait_seconds == pytest.approx(60)
    assert info.value.status is None  # local, not QBO's answer
    clock.now += 30
    with pytest.raises(QboRateLimited), t.acquire("r1"):
        pass
    clock.now += 30.001
    with t.acquire("r1"):
        pass
    # Realms are independent.
    with t.acquire("r2"):
        pass


def test_time_scale_shrinks_the_window_and_slack_widens_it() -> None:
    clock = Clock()
    t = InProcessThrottle(2, 10, 40, requests_per_second=None, time_scale=20, slack_seconds=1, max_wait=0, clock=clock)
    for _ in range(2):
        with t.acquire("r"):
            pass
    with pytest.raises(QboRateLimited) as info, t.acquire("r"):
        pass
    assert info.value.wait_seconds == pytest.approx(61 / 20)


def test_requests_per_second() -> None:
    clock = Clock()
    t = InProcessThrottle(500, 10, 40, requests_per_second=3, slack_seconds=0, max_wait=0, clock=clock)
    for _ in range(3):
        with t.acquire("r"):
            pass
    with pytest.raises(QboRateLimited), t.acquire("r"):
        pass
    clock.now += 1.0
    with t.acquire("r"):
        pass


def test_batch_limit_counts_batches_only() -> None:
    clock = Clock()
    t = InProcessThrottle(500, 10, 2, requests_per_second=None, slack_seconds=0, max_wait=0, clock=clock)
    for _ in range(2):
        with t.acquire("r", "batch"):
            pass
    with pytest.raises(QboRateLimited), t.acquire("r", "batch"):
        pass
    with t.acquire("r", "request"):  # plain requests still flow
        pass
    with pytest.raises(ValueError):
        t.acquire("r", "bogus")  # type: ignore[arg-type]


def test_penalty_blocks_new_calls_until_it_ends() -> None:
    clock = Clock()
    t = InProcessThrottle(max_wait=0, clock=clock)
    t.penalize("r", 60)
    with pytest.raises(QboRateLimited) as info, t.acquire("r"):
        pass
    assert info.value.wait_seconds == pytest.approx(60)
    t.penalize("r", 10)  # a shorter penalty does not shorten the current one
    clock.now += 59
    with pytest.raises(QboRateLimited), t.acquire("r"):
        pass
    clock.now += 1.001
    with t.acquire("r"):
        pass
    with t.acquire("other"):
        pass


def test_concurrency_is_capped_across_threads() -> None:
    t = InProcessThrottle(10_000, 3, 40, requests_per_second=None, time_scale=1000, max_wait=10)
    inside = 0
    peak = 0
    lock = threading.Lock()
    release = threading.Event()
    entered = threading.Semaphore(0)

    def worker() -> None:
        nonlocal inside, peak
        with t.acquire("r"):
            with lock:
                inside += 1
                peak = max(peak, inside)
            entered.release()
            release.wait(5)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for th in threads:
        th.start()
    for _ in range(3):
        assert entered.acquire(timeout=5)
    assert t.in_flight("r") == 3
    assert not entered.acquire(timeout=0.05)  # the fourth is held back
    release.set()
    for th in threads:
        th.join(5)
    assert peak == 3
    assert t.in_flight("r") == 0


def test_penalize_wakes_waiters_to_the_new_deadline() -> None:
    # A waiter blocked on the window sees a penalty set meanwhile (real time, tiny scaled windows).
    t = InProcessThrottle(1, 5, 40, requests_per_second=None, time_scale=600, slack_seconds=0, max_wait=5)
    with t.acquire("r"):
        pass
    t.penalize("r", 0.05)
    with t.acquire("r"):  # waits for both the window (0.1 s) and the penalty, then goes
        pass


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        InProcessThrottle(0)
    with pytest.raises(ValueError):
        InProcessThrottle(time_scale=0)


def test_a_call_leaves_the_window_one_minute_after_it_finished() -> None:
    clock = Clock()
    t = InProcessThrottle(2, 10, 40, requests_per_second=None, slack_seconds=0, max_wait=0, clock=clock)
    slow = t.acquire("r")
    slow.__enter__()  # started at 1000, still running
    with t.acquire("r"):  # starts and finishes at 1000
        pass
    with pytest.raises(QboRateLimited), t.acquire("r"):
        pass
    clock.now += 30
    slow.__exit__(None, None, None)  # finished at 1030
    clock.now += 30.5  # 1060.5: the quick call has left the window, the slow one has not
    with t.acquire("r"):
        pass
    with pytest.raises(QboRateLimited) as info, t.acquire("r"):
        pass
    assert info.value.wait_seconds == pytest.approx(29.5)  # the slow call leaves at 1090
    assert t.in_flight("r") == 0
