"""Settings of a chaos run (benchmarks/chaos.py): Batchly's own, plus the knobs the run sets through CHAOS_* variables.

The orchestrator and every ``qcluster`` it starts use this module (DJANGO_SETTINGS_MODULE), so they agree on the
time scale, short leases (a SIGKILLed worker's chunk comes back in seconds, not minutes) and short drains.
"""

from __future__ import annotations

from batchly.settings import *  # noqa: F403
from batchly.settings import Q_CLUSTER, QBO_SYNC, env

# Measured as a deployment runs (DEBUG on would log every query, and on SQLite quote its parameters with an extra
# query), with the development secrets a harness against the local sandbox uses on purpose: the checks that stop a
# deployment on them (qbo_sync.E014-E016, docs/security.md) are acknowledged here.
DEBUG = False
SILENCED_SYSTEM_CHECKS = ["qbo_sync.E014", "qbo_sync.E015", "qbo_sync.E016"]

QBO_SYNC = {
    **QBO_SYNC,
    "TIME_SCALE": env.float("CHAOS_TIME_SCALE", default=60.0),
    "PUSH_DELAY_SECONDS": 0,
    "RETRY_BASE_SECONDS": env.float("CHAOS_RETRY_BASE_SECONDS", default=0.5),
    "RETRY_MAX_SECONDS": 10,
    "MAX_ATTEMPTS": 30,
    "LEASE_SECONDS": env.float("CHAOS_LEASE_SECONDS", default=20.0),
    "CHUNK_SIZE": env.int("CHAOS_CHUNK_SIZE", default=30),
    "DRAIN_BUDGET_SECONDS": env.float("CHAOS_DRAIN_BUDGET_SECONDS", default=15.0),
    "THROTTLE_BACKEND": "database",
    "HTTP_TIMEOUT": (2.0, 10.0),
}
Q_CLUSTER = {**Q_CLUSTER, "timeout": 60, "retry": 90, "poll": 0.2, "name": env("CHAOS_CLUSTER_NAME", default="chaos")}
