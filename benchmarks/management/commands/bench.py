"""``manage.py bench SCENARIO``: the benchmark suite (docs/performance.md), with Batchly as the host.

Each scenario runs on a *fresh database* (a migrated temporary SQLite file, or a PostgreSQL database cloned from a
migrated template when ``--database-url`` points at PostgreSQL) in a child process with ``DATABASE_URL`` set to it
(Batchly's settings read the database from ``DATABASE_URL``). The child calls :func:`benchmarks.scenarios.run`,
which creates host data, starts its own sandbox and returns the figures; this command prints them as a table and,
with ``--json``, as one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

#: ``all`` runs these (one process drains, or none).
SCENARIOS = ("push-invoices", "push-naive", "import-customers", "enqueue", "progress-api", "multi-realm")
#: Run by name (``make bench-fleet``): they start real django-q2 clusters and have sizes of their own.
FLEET_SCENARIOS = ("fleet-throughput", "realtime-latency", "fleet-nightly")
#: Options forwarded to the child process as they are.
FORWARDED = ("count", "time_scale", "latency_ms", "workers", "chunk_size", "throttle", "naive_count", "realms",
             "clusters", "saves", "load_count")


class Command(BaseCommand):
    help = ("Run a benchmark scenario (or all) against a fresh database and the bundled sandbox; prints a table, and "
            "with --json one JSON object on the last line.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("scenario", choices=[*SCENARIOS, *FLEET_SCENARIOS, "all"],
                            help="A scenario, or all (every one but the fleet scenarios, which start real "
                                 "django-q2 clusters and run by name).")
        parser.add_argument("--count", type=int, default=None,
                            help="Records (invoices, customers, queue items; organizations for fleet-nightly); "
                                 "default: the scenario's own.")
        parser.add_argument("--time-scale", type=float, default=1.0,
                            help="Run QBO's windows and latency this many times faster (figures are reported in QBO "
                                 "minutes too).")
        parser.add_argument("--latency-ms", default="100-400", help="Sandbox latency per call ('' for none).")
        parser.add_argument("--workers", type=int, default=None,
                            help="Drain worker processes for the push scenarios (default 2; 3 for multi-realm); for "
                                 "the fleet scenarios, django-q2 workers per cluster (default 2).")
        parser.add_argument("--clusters", type=int, default=None,
                            help="fleet-throughput, fleet-nightly and realtime-latency: real django-q2 clusters "
                                 "(manage.py qcluster) to start (default 2, 2 and 1).")
        parser.add_argument("--saves", type=int, default=None,
                            help="realtime-latency: host saves of one customer to time (default 50).")
        parser.add_argument("--load", dest="load_count", type=int, nargs="?", const=5000, default=None,
                            help="realtime-latency: meanwhile three other organizations each push this many "
                                 "invoices (--load alone: 5,000).")
        parser.add_argument("--realms", type=int, default=None,
                            help="fleet-throughput: organizations, one realm each (default 20).")
        parser.add_argument("--chunk-size", type=int, default=None, help="CHUNK_SIZE for the drains (default 300).")
        parser.add_argument("--throttle", choices=("database", "redis", "memory"), default="database",
                            help="THROTTLE_BACKEND (redis: QBO_BENCH_REDIS_URL, default redis://127.0.0.1:6379/8).")
        parser.add_argument("--naive-count", type=int, default=None,
                            help="push-naive: invoices the naive loop pushes (default min(count, 500)).")
        parser.add_argument("--database-url", default=None,
                            help="A PostgreSQL server (postgres://user@host:port/any) to create the fresh databases "
                                 "on; default: temporary SQLite files.")
        parser.add_argument("--json", action="store_true", help="End with one JSON object on the last line.")
        parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)

    def handle(self, *args: Any, **options: Any) -> None:
        settings.DEBUG = False  # measured as a deployment runs (a checkout's DEBUG logs every query)
        command = self
        for name in ("count", "workers", "chunk_size", "naive_count", "realms", "clusters", "saves", "load_count"):
            if options.get(name) is not None and options[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be at least 1.")
        if options["in_process"]:
            self.stdout.write(json.dumps(run_here(options), default=str, sort_keys=True))
            return
        scenarios = list(SCENARIOS) if options["scenario"] == "all" else [options["scenario"]]
        results = []
        with fresh_databases(options["database_url"]) as new_database:
            for scenario in scenarios:
                with new_database() as url:
                    began = time.monotonic()
                    result = run_child(scenario, url, options)
                result.setdefault("seconds_total", round(time.monotonic() - began, 1))
                results.append(result)
                print_table(command, result)
        if options["json"]:
            out = results[0] if len(results) == 1 else {"scenarios": results}
            command.stdout.write(json.dumps(out, default=str, sort_keys=True))


def run_here(options: dict[str, Any]) -> dict[str, Any]:
    from benchmarks.scenarios import run as runner

    kwargs = {k: options[k] for k in FORWARDED if options.get(k) not in (None, "")}
    if options.get("latency_ms") == "":
        kwargs["latency_ms"] = None
    result = runner(options["scenario"], **kwargs)
    result["table"] = [list(row) for row in result.get("table", [])]
    return result


def run_child(scenario: str, database_url: str, options: dict[str, Any]) -> dict[str, Any]:
    from django.conf import settings

    args = [sys.executable, "-m", "django", "bench", scenario, "--in-process"]
    for key in FORWARDED:
        value = options.get(key)
        if value is not None:
            flag = "load" if key == "load_count" else key.replace("_", "-")
            args.append(f"--{flag}={value}")
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": settings.SETTINGS_MODULE}
    cwd = str(getattr(settings, "BASE_DIR", "") or os.getcwd())
    env["PYTHONPATH"] = os.pathsep.join(p for p in (cwd, env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run(args, cwd=cwd, env=env, stdout=subprocess.PIPE, text=True, check=False)  # noqa: S603
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        raise CommandError(f"bench {scenario} failed (exit {proc.returncode}); see the output above.")
    return json.loads(lines[-1])


def print_table(command: BaseCommand, result: dict[str, Any]) -> None:
    rows = [("scenario", f"{result['scenario']} on {result.get('database')}, time scale {result.get('time_scale')}")]
    rows += [tuple(r) for r in result.get("table", [])]
    rows.append(("peak RSS", f"{result.get('peak_rss_mb')} MB"))
    width = max(len(str(r[0])) for r in rows)
    command.stdout.write("")
    for label, value in rows:
        command.stdout.write(f"  {str(label).ljust(width)}  {value}")


# --- fresh databases ----------------------------------------------------------------------------------------------


def _migrate(database_url: str) -> None:
    from django.conf import settings

    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": settings.SETTINGS_MODULE}
    cwd = str(getattr(settings, "BASE_DIR", "") or os.getcwd())
    env["PYTHONPATH"] = os.pathsep.join(p for p in (cwd, env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run([sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
                          cwd=cwd, env=env, check=False)
    if proc.returncode != 0:
        raise CommandError("migrating the bench database failed")


@contextmanager
def fresh_databases(server_url: str | None) -> Iterator[Any]:
    """Yields a factory of fresh, migrated databases (a context manager giving each one's URL). Migrations run once,
    into a template that every scenario's database is copied from."""
    if not server_url or server_url.startswith("sqlite"):
        directory = tempfile.mkdtemp(prefix="qbo_bench_")
        template = os.path.join(directory, "template.sqlite3")
        migrated = os.environ.get("QBO_BENCH_SQLITE_TEMPLATE")  # a migrated file to start from (the test suite's)
        if migrated:
            shutil.copyfile(migrated, template)
        else:
            _migrate(f"sqlite:///{template}")

        @contextmanager
        def sqlite_copy() -> Iterator[str]:
            path = os.path.join(directory, f"{uuid.uuid4().hex[:8]}.sqlite3")
            shutil.copyfile(template, path)
            yield f"sqlite:///{path}"

        try:
            yield sqlite_copy
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    if not server_url.startswith(("postgres://", "postgresql://")):
        raise CommandError("--database-url must be a postgres:// URL (or sqlite:// for the default).")
    import psycopg

    parts = urlsplit(server_url)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    prefix = f"qbo_bench_{os.getpid()}"
    template = f"{prefix}_tpl"

    def admin(sql: str) -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql)

    admin(f'CREATE DATABASE "{template}"')
    try:
        _migrate(urlunsplit(parts._replace(path=f"/{template}")))

        @contextmanager
        def pg_clone() -> Iterator[str]:
            name = f"{prefix}_{uuid.uuid4().hex[:8]}"
            admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            try:
                yield urlunsplit(parts._replace(path=f"/{name}"))
            finally:
                admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        yield pg_clone
    finally:
        admin(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
