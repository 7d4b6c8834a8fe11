"""The reduced chaos run of CI: the whole suite (benchmarks/chaos.py) at a few hundred invoices, faults on, a cluster
SIGKILLed mid-chunk twice, tokens expired, the sandbox restarted from its saved state; duplicates, lost items and
drift must all be 0. On PostgreSQL (DATABASE_URL) it runs with two clusters."""

from __future__ import annotations

import os

import pytest

from benchmarks import chaos


@pytest.mark.slow
def test_a_reduced_chaos_run_ends_with_books_matching() -> None:
    url = os.environ.get("DATABASE_URL", "")
    database = "postgres" if url.startswith(("postgres://", "postgresql://")) else "sqlite"
    lines: list[str] = []
    result = chaos.run(count=150, time_scale=120, database=database, kills=2, lease_seconds=5, write=lines.append,
                       pg_url=url.rsplit("/", 1)[0] + "/postgres" if database == "postgres" else "")
    print("\n".join(lines))
    assert result, "the orchestrator printed no result"
    assert result["kills"] == 2 and result["sandbox_restarts"] == 1 and result["faults_total"] > 0
    assert (result["duplicates"], result["lost"]) == (0, 0), result
    assert result["drift"] == 0, result["drift_lines"]
