"""A real django-q2 cluster (``manage.py qcluster``, ORM broker) drains a job to completion, exactly once per item.

It runs against a database of its own: a file-based SQLite database, or a fresh PostgreSQL database on the server
DATABASE_URL points at (the second run of .ci/run). The cluster runs a trivial processor, named by
``QBO_SYNC["PROCESSOR"]`` in its settings module (tests/queue/cluster_settings.py). With REDIS_URL set, the same
runs on the Redis broker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import environ
import pytest

ROOT = Path(__file__).resolve().parents[2]
SIZE = 150
TIMEOUT = 90.0


def _run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _stop(cluster: subprocess.Popen) -> None:
    """Stop the cluster we started: SIGTERM to its main process (it stops its workers), then anything left of its
    own process group (``start_new_session``) is killed."""
    started = time.monotonic()
    cluster.send_signal(signal.SIGTERM)
    try:
        cluster.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(cluster.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    cluster.wait(timeout=10)
    print(f"cluster stopped in {time.monotonic() - started:.1f}s")


@pytest.fixture
def cluster_database(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://", "pgsql://")):
        # A copy of the migrated file (tests/plugins/databases.py), asked for only here: PostgreSQL needs none.
        yield request.getfixturevalue("sqlite_copy")(tmp_path / "cluster.sqlite3")
        return
    import psycopg

    config = environ.Env.db_url_config(url)
    name = f"qbo_sync_cluster_{uuid.uuid4().hex[:8]}"
    server = {"host": config.get("HOST") or "127.0.0.1", "port": config.get("PORT") or 5432,
              "user": config.get("USER") or "postgres", "password": config.get("PASSWORD") or None,
              "dbname": "postgres"}
    with psycopg.connect(**server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(**server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _env(cluster_database: str, broker: str, log: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.queue.cluster_settings",
        "DATABASE_URL": cluster_database,
        "REDIS_URL": os.environ.get("REDIS_URL", "") if broker == "redis" else "",
        "Q_WORKERS": "2",
        "QBO_SYNC_TEST_LOG": str(log),
        "PYTHONPATH": str(ROOT),
        "LOG_LEVEL": "WARNING",
    }


def _seed_next_to_a_cluster(env: dict[str, str], tmp_path: Path, *args: str) -> tuple[dict, str]:
    """Migrate (PostgreSQL), start ``manage.py qcluster`` (no schedules installed: only kicks start drains), run
    the seed script with ``args``, stop the cluster; returns the seed's JSON line and the tail of the cluster's
    log."""
    if not env["DATABASE_URL"].startswith("sqlite"):  # a copy of the migrated SQLite file is ready
        migrate = _run(["manage.py", "migrate", "--noinput", "-v", "0"], env)
        assert migrate.returncode == 0, migrate.stderr[-2000:]

    cluster_log = (tmp_path / "qcluster.log").open("w")
    cluster = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=cluster_log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        seeded = _run(["tests/queue/cluster_seed.py", *args], env, timeout=TIMEOUT + 60)
        assert seeded.returncode == 0, seeded.stderr[-2000:]
        result = json.loads(seeded.stdout.strip().splitlines()[-1])
    finally:
        _stop(cluster)
        cluster_log.close()
    return result, (tmp_path / "qcluster.log").read_text()[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("broker", ["orm", pytest.param("redis", marks=pytest.mark.redis)])
def test_a_real_cluster_drains_a_job_to_completion(cluster_database: str, broker: str, tmp_path: Path) -> None:
    log = tmp_path / "processed.log"
    env = _env(cluster_database, broker, log)
    result, output = _seed_next_to_a_cluster(env, tmp_path, str(SIZE), str(TIMEOUT))
    print(result)
    assert result["state"] == "completed", f"{result}\n{output}"
    assert result["statuses"] == {"completed": SIZE}
    processed = Counter(log.read_text().split())
    assert len(processed) == SIZE and set(processed.values()) == {1}, "every item processed exactly once"


@pytest.mark.slow
def test_host_saves_reach_a_real_cluster_through_their_kicks_alone(cluster_database: str, tmp_path: Path) -> None:
    """Three saves, one after another, each due 2 s after its enqueue, from a process that is not the cluster's.
    With no schedule installed, only the kicks can get them sent: the drain a kick starts waits for the item to
    fall due (it used to stop at once), and the web process may kick again as soon as that drain started (its
    flag used to live in its own memory for 10 s). Without either fix an item waits forever here."""
    log = tmp_path / "processed.log"
    result, output = _seed_next_to_a_cluster(_env(cluster_database, "orm", log), tmp_path, "3", "60", "realtime")
    print(result)
    assert result["state"] == "completed", f"{result}\n{output}"
    assert Counter(log.read_text().split()).most_common(1)[0][1] == 1, "every save sent once"
