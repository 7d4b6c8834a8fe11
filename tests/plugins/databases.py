"""A migrated SQLite file, made once per test run, for the tests that start ``manage.py`` processes.

``migrate`` in a fresh process costs about 3 CPU seconds (much more wall time on a busy machine), and the tests
that need a file-based database of their own (the CLI as a process, the real-cluster tests, the bench command's
scenarios) each ran it. ``migrated_sqlite`` migrates one file per run (shared by the xdist workers), and
``sqlite_copy(path)`` copies it where a test wants its database. The bench command takes the same file through
``QBO_BENCH_SQLITE_TEMPLATE`` (benchmarks/management/commands/bench.py). The tests that check what ``migrate``
itself does (tests/foundation/test_checks.py, tests/security/test_production_checks.py) still run it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    # Under xdist every worker's temporary directory sits in one directory of the run: the first worker to get
    # here migrates the file there (holding a lock), the others wait for the lock and find it made.
    root = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    path = root / "migrated-template.sqlite3"
    with open(root / "migrated-template.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            partial = root / f"migrated-template.{worker_id}.sqlite3"
            env = {**os.environ, "DATABASE_URL": f"sqlite:///{partial}", "PYTHONPATH": str(ROOT)}
            env.pop("REDIS_URL", None)
            subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env,
                           check=True, timeout=300)
            partial.rename(path)
    return path


@pytest.fixture(scope="session")
def sqlite_copy(migrated_sqlite: Path) -> Callable[[Path], str]:
    """``sqlite_copy(path) -> "sqlite:///path"``: a fresh, migrated database file at ``path``."""

    def copy(path: Path) -> str:
        shutil.copyfile(migrated_sqlite, path)
        return f"sqlite:///{path}"

    return copy
