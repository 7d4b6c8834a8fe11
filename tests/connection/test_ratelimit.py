"""The shared per-realm throttles: several workers with their own limiter instances (as separate processes have)
stay under the sandbox's limits together, a dead worker's slot comes back, a 429 pause is shared."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from qbo_sync.client import QboClient
from qbo_sync.exceptions import QboRateLimited
from qbo_sync.sandbox import Sandbox
from qbo_sync.services.ratelimit import (
    DatabaseThrottle,
    InProcessThrottle,
    RedisThrottle,
    SharedThrottle,
    reset_throttles,
    throttle_for_settings,
)
from qbo_sync.services.tokens import DatabaseTokenProvider
from tests.connection.conftest import connect_realm, qbo_settings_for

TIME_SCALE = 30.0  # a QBO minute lasts two real seconds


def make_throttle(backend: str, **limits: Any) -> SharedThrottle:
    if backend == "redis":
        return RedisThrottle(os.environ["REDIS_URL"], **limits)
    return DatabaseThrottle(**limits)


BACKENDS = [pytest.param("database", id="database"), pytest.param("redis", id="redis", marks=pytest.mark.redis)]


@pytest.fixture
def limited_sandbox(settings: Any) -> Iterator[Sandbox]:
    """A sandbox of our own, limited to 60 requests a (scaled) minute and 3 in flight."""
    sandbox = Sandbox(time_scale=TIME_SCALE, rate_limit=60, concurrency=3, latency_ms=(2, 10))
    sandbox.start()
    for name, value in qbo_settings_for(sandbox, TIME_SCALE=TIME_SCALE).items():
        setattr(settings, name, value)
    yield sandbox
    sandbox.stop()
    reset_throttles()


def run_workers(clients: list[QboClient], threads_per_client: int, calls_per_thread: int) -> list[str]:
    outcomes: list[str] = []
    lock = threading.Lock()

    def work(client: QboClient) -> None:
        from django.db import connections

        try:
            for _ in range(calls_per_thread):
                try:
                    client.company_info()
                    outcome = "ok"
                except Exception as exc:
                    outcome = f"{type(exc).__name__}: {exc}"
                with lock:
                    outcomes.append(outcome)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(c,)) for c in clients for _ in range(threads_per_client)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_workers_together_never_exceed_the_realm_limits(limited_sandbox: Sandbox, shared_db: Any,
                                                          backend: str) -> None:
    realm = limited_sandbox.create_realm()
    connection = connect_realm(limited_sandbox, realm)
    # Two limiter instances = two worker processes: each has its own per-process semaphore, only the store is shared.
    limits = dict(requests_per_minute=60, max_in_flight=3, batch_per_minute=40, time_scale=TIME_SCALE)
    throttles = [make_throttle(backend, **limits) for _ in range(2)]
    if backend == "redis":
        throttles[0].reset(realm)  # type: ignore[attr-defined]
    clients = [
        QboClient(realm, api_base_url=limited_sandbox.base_url, tokens=DatabaseTokenProvider(connection.pk),
                  throttle=t, throttle_backoff=60 / TIME_SCALE)
        for t in throttles
    ]

    outcomes = run_workers(clients, threads_per_client=3, calls_per_thread=15)  # 90 calls = 1.5 minutes' worth

    assert outcomes == ["ok"] * 90
    stats = limited_sandbox.stats(realm)
    assert stats["throttled_total"] == 0, stats["throttled"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_slot_held_by_a_dead_worker_comes_back_when_its_lease_expires(db: Any, backend: str) -> None:
    realm = f"l{backend[0]}{time.time_ns() % 10**15}"
    dead = make_throttle(backend, max_in_flight=1, lease_seconds=0.2)
    lease, _wait, _busy = dead._try_take(realm, False)  # taken, never released: the process was killed
    assert lease is not None
    alive = make_throttle(backend, max_in_flight=1, max_wait=0.05)
    with pytest.raises(QboRateLimited), alive.acquire(realm):
        pass  # still held

    patient = make_throttle(backend, max_in_flight=1, max_wait=30)
    with patient.acquire(realm):
        pass  # granted once the dead worker's lease ran out


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_429_pause_holds_back_every_worker_of_the_realm(db: Any, backend: str) -> None:
    realm = f"p{backend[0]}{time.time_ns() % 10**15}"
    make_throttle(backend).penalize(realm, 30)
    other_worker = make_throttle(backend, max_wait=0.05)
    with pytest.raises(QboRateLimited) as info, other_worker.acquire(realm):
        pass
    assert info.value.wait_seconds > 25
    with make_throttle(backend).acquire(f"{realm}x"):
        pass  # other realms are not affected


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_calls_have_their_own_window(db: Any, backend: str) -> None:
    realm = f"b{backend[0]}{time.time_ns() % 10**15}"
    throttle = make_throttle(backend, batch_per_minute=2, max_wait=0.05)
    for _ in range(2):
        with throttle.acquire(realm, "batch"):
            pass
    with pytest.raises(QboRateLimited), throttle.acquire(realm, "batch"):
        pass
    with throttle.acquire(realm, "request"):
        pass


def test_throttle_for_settings_picks_the_backend(settings: Any) -> None:
    settings.REDIS_URL = ""
    settings.QBO_SYNC = {**settings.QBO_SYNC, "THROTTLE_BACKEND": "auto", "TIME_SCALE": 5}
    throttle = throttle_for_settings()
    assert isinstance(throttle, DatabaseThrottle) and throttle.time_scale == 5
    assert throttle_for_settings() is throttle  # one per process, so its semaphore is shared
    settings.QBO_SYNC = {**settings.QBO_SYNC, "THROTTLE_BACKEND": "memory"}
    assert isinstance(throttle_for_settings(), InProcessThrottle)
    settings.QBO_SYNC = {**settings.QBO_SYNC, "THROTTLE_BACKEND": "redis"}
    from qbo_sync.exceptions import QboConfigurationError

    with pytest.raises(QboConfigurationError, match="REDIS_URL"):
        throttle_for_settings()
    settings.REDIS_URL = "redis://127.0.0.1:6379/7"
    settings.QBO_SYNC = {**settings.QBO_SYNC, "THROTTLE_BACKEND": "auto"}
    assert isinstance(throttle_for_settings(), RedisThrottle)
    reset_throttles()
