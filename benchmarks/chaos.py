"""The chaos suite: a whole sync run against the bundled sandbox under fire, judged by reconciliation.

``run(count=..., time_scale=..., database="sqlite"|"postgres", clusters=...)`` (``manage.py chaos``, ``make chaos``)
creates a fresh database, then runs the *orchestrator* in a child process on it (``manage.py chaos --inner`` with
``benchmarks.chaos_settings``). The orchestrator:

1. starts the sandbox (state file, faults off), creates a company with the accountant's starter data, creates the
   Batchly data (``count`` invoices), connects through the real OAuth flow;
2. starts ``clusters`` django-q2 clusters (``manage.py qcluster`` subprocesses, 2 workers each) and keeps drain
   tasks queued for them;
3. imports, then pushes customers, items and every invoice, while it
   - turns faults on: 5xx, connection resets, slow responses, responses lost after the write committed, garbage
     bodies, and 429 storms (the realm's limit dropped to a few requests a minute for a while);
   - expires every access token of the realm several times (refresh tokens rotate on every refresh);
   - SIGKILLs a whole cluster (main process and workers) while it holds a chunk, ``kills`` times, and restarts it;
   - stops the sandbox and starts a new one from its saved state, once;
   - edits customers and items on both sides (Batchly saves; the accountant through the QBO API), records
     payments as the accountant, and starts pulls;
4. turns faults off, lets the queue drain, pulls once more, and reconciles. Then prints the table and, last, one
   JSON object (keys ``faults``, ``kills``, ``duplicates``, ``lost``, ``drift`` …).

A development harness outside the installable package, with Batchly as its host; qbo_sync never imports it (the
host does the choreography; the engine is what is under test).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FAULTS = {"fault_rate": 0.03, "reset_rate": 0.02, "slow_rate": 0.01, "lost_response_rate": 0.04, "garbage_rate": 0.01}


# --- the parent: a fresh database, then the orchestrator in a child process ---------------------------------------


def run(*, count: int = 3000, time_scale: float = 60.0, database: str = "sqlite", clusters: int | None = None,
        kills: int = 4, seed: int = 7, write: Callable[[str], None] = print, lease_seconds: float | None = None,
        pg_url: str = "postgres://postgres@127.0.0.1:5432/postgres") -> dict[str, Any]:
    """Run the chaos suite; returns its result (the JSON object). ``write`` receives every line it prints."""
    clusters = clusters or (2 if database == "postgres" else 1)
    workdir = Path(tempfile.mkdtemp(prefix="chaos-", dir=ROOT / "var" if (ROOT / "var").is_dir() else None))
    drop: Callable[[], None] = lambda: None  # noqa: E731
    if database == "postgres":
        url, drop = _create_pg_database(pg_url)
    elif database == "sqlite":
        url = f"sqlite:///{workdir / 'chaos.sqlite3'}"
    else:
        raise ValueError("database must be sqlite or postgres")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.chaos_settings", "DATABASE_URL": url,
           "CHAOS_TIME_SCALE": str(time_scale), "PYTHONPATH": str(ROOT), "LOG_LEVEL": "ERROR",
           "QBO_SYNC_LOG_LEVEL": "ERROR", "REDIS_URL": "", "Q_WORKERS": "2",
           "CHAOS_CLUSTER_NAME": f"chaos{uuid.uuid4().hex[:6]}"}
    if lease_seconds:
        env["CHAOS_LEASE_SECONDS"] = str(lease_seconds)
    args = [sys.executable, "manage.py", "chaos", "--inner", "--count", str(count), "--time-scale", str(time_scale),
            "--clusters", str(clusters), "--kills", str(kills), "--seed", str(seed), "--workdir", str(workdir),
            "--db", database]
    result: dict[str, Any] = {}
    try:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,  # noqa: S603
                                text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            if line.startswith("{") and line.endswith("}"):
                try:
                    result = json.loads(line)
                    continue
                except ValueError:
                    pass
            write(line)
        proc.wait()
        if proc.returncode and not result:
            raise RuntimeError(f"the chaos orchestrator exited with {proc.returncode}")
    finally:
        drop()
    return result


def _create_pg_database(server_url: str) -> tuple[str, Callable[[], None]]:
    import environ
    import psycopg

    config = environ.Env.db_url_config(server_url)
    server = {"host": config.get("HOST") or "127.0.0.1", "port": config.get("PORT") or 5432,
              "user": config.get("USER") or "postgres", "password": config.get("PASSWORD") or None,
              "dbname": "postgres"}
    name = f"qbo_chaos_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(**server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    user = server["user"] + (f":{server['password']}" if server["password"] else "")
    return f"postgres://{user}@{server['host']}:{server['port']}/{name}", drop


# --- the orchestrator (runs inside Django, on the chaos database) -------------------------------------------------


class Cluster:
    """One ``manage.py qcluster`` in its own process group (so a SIGKILL takes its workers too)."""

    def __init__(self, n: int, workdir: Path) -> None:
        self.n = n
        self.log = (workdir / f"qcluster-{n}.log").open("a")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=os.environ.copy(),
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        self.kill()
        self.log.close()


class Accountant:
    """A person in QuickBooks: their own app, their own tokens (re-issued when the chaos expires them)."""

    def __init__(self, sandbox: Any, realm: str, time_scale: float) -> None:
        self.sandbox, self.realm, self.time_scale = sandbox, realm, time_scale
        self.errors = 0
        self.client = self._client()

    def _client(self) -> Any:
        from django.utils import timezone

        from qbo_sync.client import InMemoryTokenProvider, InProcessThrottle, QboClient, TokenSet

        tokens = self.sandbox.issue_tokens(self.realm, client_id="accountant")
        return QboClient(self.realm, api_base_url=self.sandbox.base_url, tokens=InMemoryTokenProvider(TokenSet(
            access_token=tokens["access_token"], refresh_token=tokens["refresh_token"],
            expires_at=timezone.now() + dt.timedelta(hours=1))),
            throttle=InProcessThrottle(100_000, 50, 100_000, requests_per_second=None),
            backoff_base=0.05, backoff_cap=0.5)

    def do(self, method: str, *args: Any, **kwargs: Any) -> Any:
        from qbo_sync.exceptions import QboApiError, QboAuthError

        for _ in range(3):
            try:
                return getattr(self.client, method)(*args, **kwargs)
            except QboAuthError:
                self.client = self._client()
            except (QboApiError, OSError):
                time.sleep(0.05)
        self.errors += 1
        return None


class Orchestrator:
    def __init__(self, *, count: int, time_scale: float, clusters: int, kills: int, seed: int, workdir: Path,
                 database: str, write: Callable[[str], None]) -> None:
        self.count, self.time_scale, self.n_clusters, self.n_kills = count, time_scale, clusters, kills
        self.workdir, self.database, self.write = workdir, database, write
        self.rng = random.Random(seed)
        self.kills = 0
        self.restarts = 0
        self.token_expiries = 0
        self.storms = 0
        self.edits = Counter()
        self.paid: set[str] = set()
        self.counters: Counter[str] = Counter()
        self.events: list[str] = []

    # -- helpers --
    def log(self, text: str) -> None:
        self.events.append(f"{time.monotonic() - self.t0:6.1f}s {text}")
        self.write(f"  [{time.monotonic() - self.t0:6.1f}s] {text}")

    def sandbox_options(self) -> dict[str, Any]:
        return {"state_file": str(self.workdir / "sandbox-state.json"), "time_scale": self.time_scale,
                "refresh_rotate_after": 0, "access_token_ttl": 3600}

    def start_sandbox(self, port: int = 0) -> None:
        from qbo_sync.sandbox import Sandbox

        self.sandbox = Sandbox(port=port, **self.sandbox_options())
        self.sandbox.start()

    def faults(self, on: bool) -> None:
        self.sandbox.configure(self.realm, **{k: (v if on else 0.0) for k, v in FAULTS.items()})

    def harvest_counters(self) -> None:
        """Add the sandbox's counters to ours (a restarted sandbox starts new counters)."""
        stats = self.sandbox.stats(self.realm)
        for key in ("resets", "slow", "lost_responses", "garbage", "deduplicated", "auth_failures"):
            value = stats.get(key, 0)
            self.counters[key] += sum(value.values()) if isinstance(value, dict) else int(value or 0)
        for status, n in (stats.get("faults_injected") or {}).items():
            self.counters[f"http_{status}"] += int(n)
        for limit, n in (stats.get("throttled") or {}).items():
            self.counters[f"429_{limit}"] += int(n)
        requests = stats.get("requests") or {}
        self.counters["requests"] += sum(requests.values()) if isinstance(requests, dict) else int(requests)

    def kick(self) -> None:
        """Keep a drain task queued for the clusters (the minute schedule's job, at chaos speed)."""
        from django_q.models import OrmQ
        from django_q.tasks import async_task

        from qbo_sync.services.queue import has_due_work
        from qbo_sync.tasks import DRAIN_TASK, DRAIN_TASK_NAME

        if OrmQ.objects.count() < 2 * self.n_clusters and has_due_work():
            async_task(DRAIN_TASK, task_name=DRAIN_TASK_NAME, group=DRAIN_TASK_NAME, ack_failure=True)

    # -- the run --
    def run(self) -> dict[str, Any]:
        from django.conf import settings
        from django.core.management import call_command

        from batchly.demo import Demo
        from qbo_sync.conf import qbo_settings
        from qbo_sync.services import jobs

        self.t0 = time.monotonic()
        call_command("migrate", "--noinput", verbosity=0)
        self.start_sandbox()
        self.port = int(self.sandbox.base_url.rsplit(":", 1)[1])
        self.realm = self.sandbox.create_realm(starter_data=True)
        self.sandbox.default_realm = self.realm
        # This process's settings, and the environment the worker processes read them from.
        chosen = {"API_BASE_URL": self.sandbox.base_url, "AUTH_BASE_URL": self.sandbox.base_url,
                  "ENVIRONMENT": "local", "CLIENT_ID": "batchly-chaos", "CLIENT_SECRET": "batchly-chaos-secret"}
        for name, value in chosen.items():
            os.environ[f"QBO_{name}"] = value
        settings.QBO_SYNC = {**settings.QBO_SYNC, **chosen}
        qbo_settings.reload()
        demo = Demo(invoices=self.count, customers=max(20, self.count // 15), items=max(8, self.count // 100),
                    time_scale=self.time_scale, write=lambda _t: None)
        demo.create_batchly_data()
        self.org = demo.org
        call_command("qbo_sync", "connect", "--org", self.org.slug, stdout=open(os.devnull, "w"))
        self.write(f"chaos: {self.database}, {self.n_clusters} cluster(s) x 2 workers, {self.count} invoices, "
                   f"time scale {self.time_scale:g}, sandbox {self.sandbox.base_url}, realm {self.realm}")
        self.accountant = Accountant(self.sandbox, self.realm, self.time_scale)
        self.starter_payments = self.count_payments()

        self.clusters = [Cluster(n, self.workdir) for n in range(self.n_clusters)]
        for c in self.clusters:
            c.start()
        self.faults(True)
        self.log("faults on: " + ", ".join(f"{k} {v:.0%}" for k, v in FAULTS.items()))
        drain_started = time.monotonic()
        import_jobs = jobs.start_import(self.org.pk)
        self.wait_for(lambda: all(j.is_finished for j in self.refreshed(import_jobs)), 240, "import")
        started = [jobs.start_push(self.org.pk, e, jobs.unsynced_ids(self.org.pk, e) or None)
                   for e in ("Customer", "Item") if jobs.unsynced_ids(self.org.pk, e)]
        self.invoice_job = jobs.start_push(self.org.pk, "Invoice")
        self.log(f"queued: import done, {len(started)} dependency push job(s), {self.invoice_job.total} invoices")
        self.mayhem()
        self.faults(False)
        self.log("faults off; final pulls")
        self.settle()
        drain_seconds = time.monotonic() - drain_started
        for c in self.clusters:
            c.stop()
        return self.verdict(drain_seconds)

    def refreshed(self, job_list: list[Any]) -> list[Any]:
        from qbo_sync.models import SyncJob

        return list(SyncJob.objects.filter(pk__in=[j.pk for j in job_list]))

    def wait_for(self, condition: Callable[[], bool], seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                self.log(f"timed out waiting for {what}")
                return
            self.kick()
            time.sleep(0.3)

    def progress(self) -> float:
        from qbo_sync.models import QueueItem

        done = QueueItem.objects.filter(job_id=self.invoice_job.pk, status="completed").count()
        return done / max(1, self.invoice_job.total)

    def mayhem(self) -> None:
        """Faults are on; act at fixed points of the invoice push's progress until it is finished."""
        from qbo_sync.models import QueueItem, SyncJob

        kill_at = [(n + 1) / (self.n_kills + 1) for n in range(self.n_kills)]
        expire_at = [0.2, 0.5, 0.8]
        storm_at = [0.3, 0.65]
        restart_at = 0.45
        edit_at = [0.1, 0.4, 0.7, 0.9]
        storm_until = 0.0
        deadline = time.monotonic() + max(600.0, self.count * 0.5)
        last_pull = time.monotonic()
        while time.monotonic() < deadline:
            self.kick()
            p = self.progress()
            job = SyncJob.objects.get(pk=self.invoice_job.pk)
            if job.is_finished and not kill_at:
                break
            if kill_at and (p >= kill_at[0] or job.is_finished):
                if QueueItem.objects.filter(organization_id=self.org.pk, status="processing").exists() \
                        or job.is_finished:
                    victim = self.clusters[self.kills % len(self.clusters)]
                    held = QueueItem.objects.filter(status="processing").count()
                    victim.kill()
                    self.kills += 1
                    kill_at.pop(0)
                    self.log(f"SIGKILL cluster {victim.n} (holding {held} item(s) in flight) at {p:.0%}; restart")
                    victim.start()
            if expire_at and p >= expire_at[0]:
                expire_at.pop(0)
                n = self.sandbox.expire_access_tokens(self.realm)
                self.token_expiries += 1
                self.log(f"expired {n} access token(s) at {p:.0%}")
            if storm_at and p >= storm_at[0]:
                storm_at.pop(0)
                self.sandbox.configure(self.realm, rate_limit=20)
                storm_until = time.monotonic() + 4.0
                self.storms += 1
                self.log(f"429 storm: realm limit 20/min for 4 s at {p:.0%}")
            if storm_until and time.monotonic() > storm_until:
                self.sandbox.configure(self.realm, rate_limit=500)
                storm_until = 0.0
            if restart_at is not None and p >= restart_at:
                restart_at = None
                self.restart_sandbox(p)
            if edit_at and p >= edit_at[0]:
                edit_at.pop(0)
                self.edit_both_sides()
            self.pay_some(3)
            if time.monotonic() - last_pull > 5:
                self.start_pulls()
                last_pull = time.monotonic()
            time.sleep(0.25)
        if storm_until:
            self.sandbox.configure(self.realm, rate_limit=500)

    def restart_sandbox(self, p: float) -> None:
        self.harvest_counters()
        self.sandbox.stop()  # saves the state file
        time.sleep(0.5)
        for _ in range(20):
            try:
                self.start_sandbox(self.port)
                break
            except OSError:
                time.sleep(0.25)
        self.sandbox.default_realm = self.realm
        self.faults(True)
        self.restarts += 1
        self.log(f"sandbox restarted from its saved state at {p:.0%}")

    def start_pulls(self) -> None:
        from qbo_sync.services.queue import start_pull

        for entity in ("Customer", "Item", "Payment"):
            start_pull(self.org.pk, entity)

    def edit_both_sides(self) -> None:
        from batchly.models import Customer, Item
        from qbo_sync.models import EntityMapping

        links = {(m.entity_type, m.object_id): m.qbo_id for m in EntityMapping.objects.filter(
            organization_id=self.org.pk, entity_type__in=["Customer", "Item"], qbo_id__isnull=False)}
        customers = [c for c in Customer.objects.filter(organization=self.org) if ("Customer", str(c.pk)) in links]
        items = [i for i in Item.objects.filter(organization=self.org) if ("Item", str(i.pk)) in links]
        tag = self.rng.randint(1000, 9999)
        for c in self.rng.sample(customers, min(6, len(customers))):
            c.phone = f"(415) 555-{tag % 10000:04d}"
            c.company_name = f"{c.display_name} B{tag}"
            c.save()
            self.edits["customer_batchly"] += 1
        for c in self.rng.sample(customers, min(6, len(customers))):
            qbo_id = links[("Customer", str(c.pk))]
            current = self.accountant.do("read", "Customer", qbo_id)
            if current and self.accountant.do("update", "Customer", {
                    "Id": qbo_id, "SyncToken": current["SyncToken"], "sparse": True,
                    "CompanyName": f"{c.display_name} Q{tag}"}, request_id=f"chaos-c-{qbo_id}-{tag}"):
                self.edits["customer_qbo"] += 1
        for i in self.rng.sample(items, min(3, len(items))):
            i.description = f"{i.name} rev {tag}"
            i.save()
            self.edits["item_batchly"] += 1
        for i in self.rng.sample(items, min(3, len(items))):
            qbo_id = links[("Item", str(i.pk))]
            current = self.accountant.do("read", "Item", qbo_id)
            if current and self.accountant.do("update", "Item", {
                    "Id": qbo_id, "SyncToken": current["SyncToken"], "sparse": True,
                    "UnitPrice": float(Decimal(self.rng.randint(5, 300)) + Decimal("0.25"))},
                    request_id=f"chaos-i-{qbo_id}-{tag}"):
                self.edits["item_qbo"] += 1
        self.log(f"edits: {dict(self.edits)}")

    def pay_some(self, n: int) -> None:
        from qbo_sync.models import EntityMapping

        if len(self.paid) >= self.count // 10:
            return
        ids = list(EntityMapping.objects.filter(organization_id=self.org.pk, entity_type="Invoice",
                                                qbo_id__isnull=False).exclude(qbo_id__in=self.paid)
                   .order_by("?").values_list("qbo_id", flat=True)[:n])
        for qbo_id in ids:
            invoice = self.accountant.do("read", "Invoice", qbo_id)
            if not invoice:
                continue
            total = Decimal(str(invoice["TotalAmt"]))
            amount = total if len(self.paid) % 2 else (total / 2).quantize(Decimal("0.01"))
            if self.accountant.do("create", "Payment", {
                    "CustomerRef": invoice["CustomerRef"], "TotalAmt": float(amount),
                    "Line": [{"Amount": float(amount), "LinkedTxn": [{"TxnId": qbo_id, "TxnType": "Invoice"}]}]},
                    request_id=f"chaos-pay-{qbo_id}"):
                self.paid.add(qbo_id)

    def count_payments(self) -> int:
        return int(self.accountant.do("count", "Payment") or 0)

    def settle(self) -> None:
        """Faults are off: drain everything, pull, drain what the merges queued, until nothing is left."""
        from qbo_sync.models import QueueItem

        def quiet() -> bool:
            return not QueueItem.objects.filter(organization_id=self.org.pk,
                                                status__in=["pending", "processing"]).exists()

        for _round in range(4):
            self.wait_for(quiet, 300, "the queue to drain")
            self.start_pulls()
            self.wait_for(quiet, 300, "the final pulls")
            if quiet():
                break

    def verdict(self, drain_seconds: float) -> dict[str, Any]:
        from batchly.models import Invoice
        from qbo_sync.models import Conflict, EntityMapping, QueueItem
        from qbo_sync.services.reconcile import reconcile

        self.harvest_counters()
        report = reconcile(self.org.pk)
        first_drift = [d.line() for d in report.drift]
        invoice_dups = sum(1 for d in report.drift if d.kind == "duplicate_in_qbo")
        payments_now = self.count_payments()
        payment_dups = max(0, payments_now - self.starter_payments - len(self.paid))
        statuses = Counter(QueueItem.objects.filter(organization_id=self.org.pk).values_list("status", flat=True))
        unlinked = Invoice.objects.filter(organization=self.org).exclude(
            pk__in=[int(o) for o in EntityMapping.objects.filter(
                organization_id=self.org.pk, entity_type="Invoice", qbo_id__isnull=False)
                .values_list("object_id", flat=True)]).count()
        stuck = sum(statuses.get(s, 0) for s in ("pending", "processing", "failed", "dead"))
        faults = {k: v for k, v in sorted(self.counters.items()) if k not in ("requests", "deduplicated") and v}
        result = {
            "database": self.database, "clusters": self.n_clusters, "count": self.count,
            "time_scale": self.time_scale, "items_processed": statuses.get("completed", 0),
            "requests": self.counters["requests"], "faults": faults, "faults_total": sum(faults.values()),
            "deduplicated_by_requestid": self.counters["deduplicated"], "kills": self.kills,
            "sandbox_restarts": self.restarts, "token_expiries": self.token_expiries, "storms": self.storms,
            "edits": dict(self.edits), "payments_recorded": len(self.paid),
            "accountant_errors": self.accountant.errors,
            "duplicates": invoice_dups + payment_dups, "lost": unlinked + stuck,
            "queue": dict(statuses), "drift": len(first_drift), "drift_lines": first_drift[:20],
            "books_match": report.books_match, "open_conflicts": report.open_conflicts,
            "conflicts_auto_resolved": Conflict.objects.filter(organization_id=self.org.pk,
                                                               state="auto_resolved").count(),
            "invoices_in_qbo": report.counts.get("Invoice", {}).get("linked", 0),
            "invoice_totals": {k: str(v) for k, v in report.totals.get("Invoice", {}).items()},
            "drain_seconds": round(drain_seconds, 1), "total_seconds": round(time.monotonic() - self.t0, 1),
        }
        self.table(result)
        return result

    def table(self, r: dict[str, Any]) -> None:
        rows = [
            ("database / clusters", f"{r['database']} / {r['clusters']} x 2 workers"),
            ("invoices pushed (in QBO, linked)", f"{r['invoices_in_qbo']} of {r['count']}"),
            ("queue items processed", r["items_processed"]),
            ("requests to QBO", r["requests"]),
            *[(f"fault: {k}", v) for k, v in r["faults"].items()],
            ("retries answered by requestid", r["deduplicated_by_requestid"]),
            ("access-token expiries / 429 storms", f"{r['token_expiries']} / {r['storms']}"),
            ("worker kills (SIGKILL mid-chunk)", r["kills"]),
            ("sandbox restarts from saved state", r["sandbox_restarts"]),
            ("edits (both sides) / payments", f"{sum(r['edits'].values())} / {r['payments_recorded']}"),
            ("conflicts auto-resolved / open", f"{r['conflicts_auto_resolved']} / {r['open_conflicts']}"),
            ("duplicates (must be 0)", r["duplicates"]),
            ("lost or stuck items (must be 0)", r["lost"]),
            ("unresolved drift (must be 0)", r["drift"]),
            ("time to drain (s)", r["drain_seconds"]),
        ]
        self.write("")
        self.write(f"| {'chaos run':<40} | {'value':>28} |")
        self.write(f"|{'-' * 42}|{'-' * 30}|")
        for name, value in rows:
            self.write(f"| {name:<40} | {value!s:>28} |")
        for line in r["drift_lines"]:
            self.write(f"  drift: {line}")
        self.write("books match" if r["books_match"] else "BOOKS DO NOT MATCH")


def inner_main(*, count: int, time_scale: float, clusters: int, kills: int, seed: int, workdir: str, database: str,
               write: Callable[[str], None]) -> dict[str, Any]:
    import logging

    logging.getLogger("qbo_sync").setLevel(logging.CRITICAL)
    orch = Orchestrator(count=count, time_scale=time_scale, clusters=clusters, kills=kills, seed=seed,
                        workdir=Path(workdir), database=database, write=write)
    try:
        return orch.run()
    finally:
        for c in getattr(orch, "clusters", []):
            c.stop()
        sandbox = getattr(orch, "sandbox", None)
        if sandbox is not None:
            sandbox.stop()
