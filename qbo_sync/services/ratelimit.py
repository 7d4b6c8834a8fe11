"""Per-realm request limits shared by every worker, on every machine: the client's ``Throttle``, backed by the
database (the default) or by Redis.

QBO counts per realm and app: 500 requests a minute, 10 in flight (its current docs also say 10 a second) and 40
batch calls a minute. Each worker process has its own :class:`~qbo_sync.client.QboClient`, so the counting must
live where they all see it:

* :class:`DatabaseThrottle` (works on SQLite and PostgreSQL): a locked per-realm row makes "check the windows, then
  record the start" atomic; request start times and in-flight leases are rows. A lease expires by itself, so a
  killed process frees its slot after ``lease_seconds``.
* :class:`RedisThrottle`: the same rules in one Lua script over sorted sets (keys prefixed per realm), using the
  Redis server's clock, so machines need not agree on the time.

Both put a per-process semaphore in front (a process never needs more than the concurrency limit of slots at
once), so only callers that could start right now touch the shared store, and threads of one process do not
compete with each other for the database lock.

Windows are sliding (stricter than QBO's calendar minute), shrunk by ``TIME_SCALE`` for the sandbox, and widened
by a little slack because QBO stamps a request when it arrives, a moment after we stamped it.

Call QBO outside database transactions: inside one, the realm row lock of :class:`DatabaseThrottle` would be held
until the caller commits, serialising that realm's workers.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypedDict

from django.db import IntegrityError, connections, transaction

from qbo_sync.client.throttle import InProcessThrottle, RequestKind, Throttle, ThrottleLimits
from qbo_sync.conf import on_reload, qbo_settings
from qbo_sync.exceptions import QboConfigurationError, QboRateLimited

__all__ = ["DatabaseThrottle", "RedisThrottle", "SharedThrottle", "reset_throttles", "throttle_for_settings"]

logger = logging.getLogger(__name__)

#: Polling bounds (real seconds) while every in-flight slot is taken by other processes.
_POLL_MIN = 0.002
_POLL_MAX = 0.05


class SharedThrottle(ThrottleLimits):
    """The waiting loop and the per-process semaphore; subclasses implement one atomic check-and-take."""

    def __init__(
        self,
        requests_per_minute: int = 500,
        max_in_flight: int = 10,
        batch_per_minute: int = 40,
        *,
        requests_per_second: int | None = 10,
        time_scale: float = 1.0,
        slack_seconds: float = 0.5,
        latency_slack: float = 0.1,
        lease_seconds: float = 180.0,
        max_wait: float = 300.0,
    ) -> None:
        super().__init__(requests_per_minute, max_in_flight, batch_per_minute, requests_per_second, time_scale,
                         max_wait)
        self.lease_seconds = lease_seconds
        # slack_seconds is in QBO seconds (scaled like the windows it widens); latency_slack is real seconds: QBO
        # stamps a request when it handles it, which can be that much later than our stamp (network, scheduling),
        # and an old request stamped late there is still in its window when ours has already moved on.
        self.minute = (60.0 + slack_seconds) / time_scale + latency_slack
        self.second = (1.0 + slack_seconds / 60.0) / time_scale + latency_slack / 10
        self._lock = threading.Lock()
        self._local: dict[str, threading.BoundedSemaphore] = {}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.requests_per_minute}/min, {self.max_in_flight} in flight, "
            f"{self.batch_per_minute} batches/min, time_scale={self.time_scale})"
        )

    # --- the Throttle protocol -----------------------------------------------------------------------------

    def acquire(self, realm_id: str, kind: RequestKind = "request") -> AbstractContextManager[None]:
        if kind not in ("request", "batch"):
            raise ValueError(f"unknown request kind {kind!r}")
        return self._slot(str(realm_id), kind)

    def penalize(self, realm_id: str, seconds: float) -> None:
        if seconds > 0:
            self._penalize(str(realm_id), time.time() + seconds)
            logger.info("QBO throttle: realm %s paused for %.2fs after a 429", realm_id, seconds)

    # --- to implement ----------------------------------------------------------------------------------------

    def _try_take(self, realm_id: str, batch: bool) -> tuple[Any, float, bool]:
        """Atomically: grant a slot (``(lease, 0, False)``) or say how long to wait (``(None, seconds, busy)``,
        ``busy`` meaning every in-flight slot is taken, so the wait is only a polling interval)."""
        raise NotImplementedError

    def _release(self, realm_id: str, lease: Any) -> None:
        raise NotImplementedError

    def _penalize(self, realm_id: str, until: float) -> None:
        raise NotImplementedError

    # --- shared machinery ------------------------------------------------------------------------------------

    def _semaphore(self, realm_id: str) -> threading.BoundedSemaphore:
        with self._lock:
            sem = self._local.get(realm_id)
            if sem is None:
                sem = self._local[realm_id] = threading.BoundedSemaphore(self.max_in_flight)
            return sem

    @contextmanager
    def _slot(self, realm_id: str, kind: RequestKind) -> Iterator[None]:
        deadline = time.monotonic() + self.max_wait
        sem = self._semaphore(realm_id)
        if not sem.acquire(timeout=max(0.0, self.max_wait)):
            raise QboRateLimited(
                f"throttle: {self.max_in_flight} requests of this process already in flight for realm {realm_id}",
                wait_seconds=1.0,
            )
        try:
            lease = self._take(realm_id, kind == "batch", deadline)
            try:
                yield
            finally:
                try:
                    self._release(realm_id, lease)
                except Exception:  # the lease expires by itself; never mask the call's own outcome
                    logger.warning("QBO throttle: could not release a lease for realm %s", realm_id, exc_info=True)
        finally:
            sem.release()

    def _take(self, realm_id: str, batch: bool, deadline: float) -> Any:
        poll = _POLL_MIN
        while True:
            lease, wait, busy = self._try_take(realm_id, batch)
            if lease is not None:
                return lease
            if busy:
                wait = max(wait, poll)
                poll = min(poll * 2, _POLL_MAX)
            remaining = deadline - time.monotonic()
            if wait > remaining:
                raise QboRateLimited(
                    f"throttle could not grant a {'batch' if batch else 'request'} slot for realm {realm_id} "
                    f"within {self.max_wait}s",
                    wait_seconds=wait,
                )
            # A little jitter so that callers woken by the same expiry do not all hit the store at once.
            time.sleep(wait + random.random() * min(wait, 0.002))


class DatabaseThrottle(SharedThrottle):
    """The shared limiter in the project's database (SQLite or PostgreSQL): see the module docstring."""

    def __init__(self, *args: Any, using: str = "default", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.using = using
        self._known_realms: set[str] = set()
        self._next_purge: dict[str, float] = {}
        self._db_locks: dict[str, threading.Lock] = {}

    def _ensure_realm(self, realm_id: str) -> None:
        if realm_id in self._known_realms:
            return
        from qbo_sync.models import ThrottleRealm

        try:
            ThrottleRealm.objects.using(self.using).get_or_create(realm_id=realm_id)
        except IntegrityError:  # created by another process between get and create
            pass
        with self._lock:
            self._known_realms.add(realm_id)

    def _process_lock(self, realm_id: str) -> threading.Lock:
        with self._lock:
            lock = self._db_locks.get(realm_id)
            if lock is None:
                lock = self._db_locks[realm_id] = threading.Lock()
            return lock

    def _try_take(self, realm_id: str, batch: bool) -> tuple[Any, float, bool]:
        self._ensure_realm(realm_id)
        # One thread per process at a time: the others wait here, cheaply, instead of in SQLite's busy handler
        # (which sleeps in steps of milliseconds) or in the database's lock queue.
        with self._process_lock(realm_id):
            return self._try_take_locked(realm_id, batch)

    def _try_take_locked(self, realm_id: str, batch: bool) -> tuple[Any, float, bool]:
        from qbo_sync.models import ThrottleLease, ThrottleRealm, ThrottleStart

        db = self.using
        with transaction.atomic(using=db):
            # The lock that makes check-then-record atomic for this realm (on SQLite, BEGIN IMMEDIATE already
            # serialises writers and FOR UPDATE is a no-op).
            penalty_until = (
                ThrottleRealm.objects.using(db)
                .select_for_update()
                .filter(realm_id=realm_id)
                .values_list("penalty_until", flat=True)
                .first()
            )
            if penalty_until is None:  # the row was deleted under us (a flush): recreate it next time
                with self._lock:
                    self._known_realms.discard(realm_id)
                return None, _POLL_MIN, True
            now = time.time()
            if penalty_until > now:
                return None, penalty_until - now, False
            self._purge(realm_id, now)
            in_flight, minute_nth, second_nth, batch_nth = self._counts(realm_id, now, batch)
            if in_flight >= self.max_in_flight:
                return None, 0.0, True
            waits = [0.0]
            if minute_nth is not None:
                waits.append(minute_nth + self.minute - now)
            if second_nth is not None:
                waits.append(second_nth + self.second - now)
            if batch_nth is not None:
                waits.append(batch_nth + self.minute - now)
            wait = max(waits)
            if wait > 0:
                return None, wait, False
            ThrottleStart.objects.using(db).create(realm_id=realm_id, started_at=now, is_batch=batch)
            lease = ThrottleLease.objects.using(db).create(realm_id=realm_id, expires_at=now + self.lease_seconds)
            return lease.pk, 0.0, False

    def _counts(self, realm_id: str, now: float, batch: bool) -> tuple[int, float | None, float | None, float | None]:
        """In one round trip: leases in flight, and for each window the start that must leave it before another
        request may begin (the ``limit``-th most recent start in it; None while the window has room)."""
        from qbo_sync.models import ThrottleLease, ThrottleStart

        # Only our own table names (quoted) are interpolated; every value is a parameter.
        quote = connections[self.using].ops.quote_name
        lease_table = quote(ThrottleLease._meta.db_table)
        start_table = quote(ThrottleStart._meta.db_table)
        nth = (
            "(SELECT started_at FROM " + start_table + " WHERE realm_id = %s AND started_at > %s{extra} "  # noqa: S608
            "ORDER BY started_at DESC LIMIT 1 OFFSET %s)"
        )
        sql = (
            "SELECT (SELECT COUNT(*) FROM " + lease_table + " WHERE realm_id = %s AND expires_at > %s), "  # noqa: S608
            + nth.format(extra="") + ", " + nth.format(extra="") + ", " + nth.format(extra=" AND is_batch = %s")
        )
        rps = self.requests_per_second or 0
        never = now + 1.0  # a window start after every stamp: the subquery finds nothing (limit off / not batch)
        params: list[str | float | int | bool] = [
            realm_id, now,
            realm_id, now - self.minute, self.requests_per_minute - 1,
            realm_id, now - self.second if rps else never, max(rps - 1, 0),
            realm_id, now - self.minute if batch else never, True, self.batch_per_minute - 1,
        ]
        with connections[self.using].cursor() as cursor:
            cursor.execute(sql, params)
            in_flight, minute_nth, second_nth, batch_nth = cursor.fetchone()
        return int(in_flight), minute_nth, second_nth, batch_nth

    def _purge(self, realm_id: str, now: float) -> None:
        """Forget starts older than the minute window and expired leases, at most ten times a window."""
        from qbo_sync.models import ThrottleLease, ThrottleStart

        if now < self._next_purge.get(realm_id, 0.0):
            return
        self._next_purge[realm_id] = now + self.minute / 10
        ThrottleStart.objects.using(self.using).filter(realm_id=realm_id, started_at__lte=now - self.minute).delete()
        expired = ThrottleLease.objects.using(self.using).filter(realm_id=realm_id, expires_at__lte=now)
        if (count := expired.delete()[0]) > 0:
            logger.warning("QBO throttle: %s expired in-flight lease(s) of realm %s freed (a worker died?)",
                           count, realm_id)

    def _release(self, realm_id: str, lease: Any) -> None:
        from qbo_sync.models import ThrottleLease

        with self._process_lock(realm_id):
            ThrottleLease.objects.using(self.using).filter(pk=lease).delete()

    def _penalize(self, realm_id: str, until: float) -> None:
        from qbo_sync.models import ThrottleRealm

        self._ensure_realm(realm_id)
        ThrottleRealm.objects.using(self.using).filter(realm_id=realm_id, penalty_until__lt=until).update(
            penalty_until=until
        )


# KEYS: starts, batch starts, leases, penalty. ARGV: minute, second, rpm, rps (0 = off), batch/min, max in
# flight, is_batch (0/1), lease seconds, member. Returns {granted, wait (string: Lua numbers become integers), busy}.
_TAKE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local minute, second = tonumber(ARGV[1]), tonumber(ARGV[2])
local rpm, rps, bpm, mif = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local is_batch, lease = ARGV[7] == '1', tonumber(ARGV[8])
local member = ARGV[9]
local penalty = tonumber(redis.call('GET', KEYS[4]) or '0')
if penalty > now then
  return {0, tostring(penalty - now), 0}
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if redis.call('ZCARD', KEYS[3]) >= mif then
  return {0, '0', 1}
end
local wait = 0
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - minute)
local n = redis.call('ZCARD', KEYS[1])
if n >= rpm then
  local oldest = redis.call('ZRANGE', KEYS[1], n - rpm, n - rpm, 'WITHSCORES')
  wait = math.max(wait, tonumber(oldest[2]) + minute - now)
end
if rps > 0 then
  local recent = redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', '(' .. (now - second), 'WITHSCORES', 'LIMIT',
                            rps - 1, 1)
  if #recent > 0 then
    wait = math.max(wait, tonumber(recent[2]) + second - now)
  end
end
if is_batch then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - minute)
  local b = redis.call('ZCARD', KEYS[2])
  if b >= bpm then
    local oldest = redis.call('ZRANGE', KEYS[2], b - bpm, b - bpm, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + minute - now)
  end
end
if wait > 0 then
  return {0, tostring(wait), 0}
end
local ttl = math.ceil((minute + lease) * 1000)
redis.call('ZADD', KEYS[1], now, member)
redis.call('PEXPIRE', KEYS[1], ttl)
if is_batch then
  redis.call('ZADD', KEYS[2], now, member)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
redis.call('ZADD', KEYS[3], now + lease, member)
redis.call('PEXPIRE', KEYS[3], ttl)
return {1, '0', 0}
"""

_PENALIZE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local until_ = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ > current then
  redis.call('SET', KEYS[1], tostring(until_), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
end
return 1
"""


class RedisThrottle(SharedThrottle):
    """The shared limiter in Redis (``REDIS_URL``): one Lua script per acquisition, on the server's clock."""

    def __init__(self, redis_url: str, *args: Any, prefix: str = "qbo_sync:throttle", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - redis is in the "scale" extra
            raise QboConfigurationError("THROTTLE_BACKEND 'redis' needs the redis package (pip install redis)") from exc
        self.prefix = prefix
        self._redis = redis.Redis.from_url(redis_url)
        self._take_script = self._redis.register_script(_TAKE_SCRIPT)
        self._penalize_script = self._redis.register_script(_PENALIZE_SCRIPT)

    def _keys(self, realm_id: str) -> list[str]:
        # The hash tag keeps one realm's keys in one Redis Cluster slot.
        base = f"{self.prefix}:{{{realm_id}}}"
        return [f"{base}:starts", f"{base}:batch", f"{base}:leases", f"{base}:penalty"]

    def _try_take(self, realm_id: str, batch: bool) -> tuple[Any, float, bool]:
        member = uuid.uuid4().hex
        granted, wait, busy = self._take_script(
            keys=self._keys(realm_id),
            args=[
                repr(self.minute),
                repr(self.second),
                self.requests_per_minute,
                self.requests_per_second or 0,
                self.batch_per_minute,
                self.max_in_flight,
                1 if batch else 0,
                repr(self.lease_seconds),
                member,
            ],
        )
        if int(granted):
            return member, 0.0, False
        return None, float(wait), bool(int(busy))

    def _release(self, realm_id: str, lease: Any) -> None:
        self._redis.zrem(self._keys(realm_id)[2], lease)

    def penalize(self, realm_id: str, seconds: float) -> None:
        if seconds > 0:
            # Relative to the Redis clock, like every other time this throttle compares.
            self._penalize_script(keys=[self._keys(str(realm_id))[3]], args=[repr(float(seconds))])
            logger.info("QBO throttle: realm %s paused for %.2fs after a 429", realm_id, seconds)

    def _penalize(self, realm_id: str, until: float) -> None:  # pragma: no cover - penalize() is overridden
        self.penalize(realm_id, until - time.time())

    def reset(self, realm_id: str) -> None:
        """Forget a realm's counters (tests, or after changing limits)."""
        self._redis.delete(*self._keys(realm_id))


class _Limits(TypedDict):
    """The configured limits every throttle backend takes (one key of the process's throttle cache)."""

    requests_per_minute: int
    max_in_flight: int
    batch_per_minute: int
    time_scale: float


_throttles: dict[tuple[Any, ...], Throttle] = {}
_throttles_lock = threading.Lock()


def throttle_for_settings() -> Throttle:
    """The process-wide throttle the settings ask for (``THROTTLE_BACKEND``: auto, database, redis, memory).

    ``auto`` means Redis when ``REDIS_URL`` is set, else the database. One instance per configuration, so that
    every client of this process shares its per-process semaphore.
    """
    backend = str(qbo_settings.THROTTLE_BACKEND or "auto").lower()
    redis_url = qbo_settings.REDIS_URL or ""
    if backend == "auto":
        backend = "redis" if redis_url else "database"
    if backend not in ("database", "redis", "memory"):
        raise QboConfigurationError(
            f"QBO_SYNC['THROTTLE_BACKEND'] is {backend!r}; use 'auto', 'database', 'redis' or 'memory'."
        )
    if backend == "redis" and not redis_url:
        raise QboConfigurationError("QBO_SYNC['THROTTLE_BACKEND'] is 'redis' but REDIS_URL is not set.")
    timeout = qbo_settings.HTTP_TIMEOUT
    read_timeout = float(max(timeout) if isinstance(timeout, tuple | list) else timeout)
    limits = _Limits(
        requests_per_minute=int(qbo_settings.RATE_LIMIT_PER_MINUTE),
        max_in_flight=int(qbo_settings.MAX_CONCURRENT_REQUESTS),
        batch_per_minute=int(qbo_settings.BATCH_CALLS_PER_MINUTE),
        time_scale=float(qbo_settings.TIME_SCALE),
    )
    key = (backend, redis_url if backend == "redis" else "", read_timeout, *sorted(limits.items()))
    with _throttles_lock:
        throttle = _throttles.get(key)
        if throttle is None:
            if backend == "memory":
                throttle = InProcessThrottle(**limits)
            elif backend == "redis":
                # A lease outlives the longest request the client lets run (connect + read timeout).
                throttle = RedisThrottle(redis_url, **limits, lease_seconds=read_timeout + 30)
            else:
                throttle = DatabaseThrottle(**limits, lease_seconds=read_timeout + 30)
            _throttles[key] = throttle
        return throttle


@on_reload
def reset_throttles() -> None:
    """Drop the cached throttles (changed settings, tests)."""
    with _throttles_lock:
        _throttles.clear()
