"""``manage.py bench`` (benchmarks/): every scenario runs end to end at a tiny size and ends with one valid JSON
object. Figures are not asserted (timings belong in docs/performance.md, not in tests); correctness counters are."""

from __future__ import annotations

import ast
import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from benchmarks.management.commands.bench import SCENARIOS


@pytest.fixture
def migrated_template(monkeypatch, migrated_sqlite):
    """The scenarios' databases start from the suite's migrated SQLite file instead of migrating one of their own
    (tests/plugins/databases.py)."""
    monkeypatch.setenv("QBO_BENCH_SQLITE_TEMPLATE", str(migrated_sqlite))


@pytest.mark.slow
def test_every_scenario_runs_at_a_tiny_size_and_prints_json(migrated_template) -> None:
    out = io.StringIO()
    call_command("bench", "all", "--count", "30", "--time-scale", "30", "--latency-ms", "10-40",
                 "--naive-count", "10", "--json", stdout=out)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    report = json.loads(lines[-1])
    results = {r["scenario"]: r for r in report["scenarios"]}
    assert sorted(results) == sorted(SCENARIOS)
    for name in ("push-invoices", "push-naive", "multi-realm"):
        r = results[name]
        assert r["duplicates"] == 0 and r["missing"] == 0 and r["failed_items"] == 0, r
        assert r["throttled_429"] == 0 and r["efficiency"] > 0 and r["qbo_minutes"] > 0, r
    assert results["multi-realm"]["invoices"] == 90
    assert results["push-naive"]["ratio"] > 0 and results["push-naive"]["naive_created"] == 10
    assert results["import-customers"]["imported"] == 30 and results["import-customers"]["cpu_ms_per_record"] > 0
    assert results["enqueue"]["seconds"] > 0
    assert results["progress-api"]["p95_ms"] > 0 and results["progress-api"]["queue_items"] == 30
    assert "efficiency" in out.getvalue()  # the readable table came first


@pytest.mark.slow
def test_fleet_throughput_runs_on_real_clusters_at_a_tiny_size(migrated_template) -> None:
    """Two real django-q2 clusters drain two realms' invoices; our CPU is read from their process trees."""
    out = io.StringIO()
    call_command("bench", "fleet-throughput", "--realms", "2", "--count", "20", "--time-scale", "30",
                 "--latency-ms", "10-40", "--json", stdout=out)
    r = json.loads([line for line in out.getvalue().splitlines() if line.strip()][-1])
    assert r["invoices"] == 40 and r["created"] == 40 and r["clusters"] == 2, r
    assert r["duplicates"] == 0 and r["missing"] == 0 and r["failed_items"] == 0 and r["throttled_429"] == 0, r
    assert r["cpu_ms_per_record"] > 0 and r["efficiency"] > 0 and r["realms_per_2_core_host"] > 0, r


@pytest.mark.slow
def test_fleet_nightly_pulls_every_organization_on_real_clusters_and_purges(migrated_template) -> None:
    out = io.StringIO()
    call_command("bench", "fleet-nightly", "--count", "2", "--time-scale", "30", "--latency-ms", "10-40", "--json",
                 stdout=out)
    r = json.loads([line for line in out.getvalue().splitlines() if line.strip()][-1])
    assert r["jobs"] == 6 and r["jobs_by_state"] == {"completed": 6}, r  # one job per organization and entity
    assert r["invoices_paid_in_qbo"] == 20 and r["updated_records"] == 20, r
    assert r["pulled_records"] > 0 and r["cpu_ms_per_record"] > 0 and r["requests"] > 0, r
    assert sum(r["purge_rows_after"].values()) < sum(r["purge_rows_before"].values()), r


def test_bench_refuses_a_size_below_one() -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--realms must be at least 1"):
        call_command("bench", "fleet-throughput", "--realms", "0", stdout=io.StringIO())


def test_qbo_sync_never_imports_the_host_or_the_harnesses() -> None:
    """The harnesses use Batchly as their host from outside the package; qbo_sync imports neither."""
    package = Path(__file__).resolve().parents[2] / "qbo_sync"
    offenders = []
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(package)}: {n}" for n in names
                          if n.split(".")[0] in ("batchly", "benchmarks")]
    assert offenders == []


def test_the_harnesses_are_not_in_the_installable_package() -> None:
    """qbo_sync has no bench subcommand and no benchmark module: they crashed in any other host (issue 13)."""
    import io

    from django.core.management.base import CommandError

    package = Path(__file__).resolve().parents[2] / "qbo_sync"
    assert [p.name for p in package.rglob("*bench*")] == []
    assert [p.name for p in package.rglob("*chaos*")] == []
    with pytest.raises(CommandError, match="invalid choice: 'bench'"):
        call_command("qbo_sync", "bench", "enqueue", stdout=io.StringIO(), stderr=io.StringIO())
