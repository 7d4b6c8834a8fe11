"""Settings of the django-q2 clusters a benchmark scenario starts (``manage.py qcluster`` subprocesses): Batchly's
own, plus the knobs the scenario's process also uses, passed through QBO_BENCH_* variables, so that both sides
agree on the time scale, the chunk size and the throttle backend. The sandbox's address and keys come through
Batchly's own QBO_API_BASE_URL, QBO_AUTH_BASE_URL, QBO_CLIENT_ID and QBO_CLIENT_SECRET."""

from __future__ import annotations

from batchly.settings import *  # noqa: F403
from batchly.settings import QBO_SYNC, env

# Measured as a deployment runs (DEBUG on would log every query, and on SQLite quote its parameters with an extra
# query), with the development secrets a harness against the local sandbox uses on purpose: the checks that stop a
# deployment on them (qbo_sync.E014-E016, docs/security.md) are acknowledged here.
DEBUG = False
SILENCED_SYSTEM_CHECKS = ["qbo_sync.E014", "qbo_sync.E015", "qbo_sync.E016"]

QBO_SYNC = {
    **QBO_SYNC,
    "TIME_SCALE": env.float("QBO_BENCH_TIME_SCALE", default=1.0),
    "CHUNK_SIZE": env.int("QBO_BENCH_CHUNK_SIZE", default=300),
    "THROTTLE_BACKEND": env("QBO_BENCH_THROTTLE", default="database"),
}
