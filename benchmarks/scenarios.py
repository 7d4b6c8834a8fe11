"""Benchmark scenarios: the runner behind ``manage.py bench`` (benchmarks/management/commands/bench.py).

The command prepares a fresh database per scenario and starts a child process that calls :func:`run`, which
creates Batchly data (customers, items, invoices), starts its own sandbox *in another process* (so that the
sandbox's CPU is not counted as ours and does not compete with us for the GIL) and drives qbo_sync through its
services only.

Each scenario returns a flat dict of figures (``efficiency``, ``duplicates``, ``missing``, ``ratio``...) plus
``table``: the rows the command prints.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
import random
import resource
import statistics
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections, transaction
from django.utils import timezone

from batchly.models import Customer, Invoice, InvoiceLine, Item, Membership, Organization
from qbo_sync.client import InProcessThrottle, QboClient, TokenSet
from qbo_sync.client.tokens import InMemoryTokenProvider
from qbo_sync.conf import qbo_settings
from qbo_sync.models import EntityMapping, QboConnection, QueueItem, SyncJob
from qbo_sync.services import jobs, queue
from qbo_sync.services.drain import drain
from qbo_sync.services.progress import job_progress
from qbo_sync.services.tokens import store_tokens

CLIENT_ID = "batchly-bench"
CLIENT_SECRET = "batchly-bench-secret"
LIMITS = {"rate_limit": 500, "concurrency": 10, "batch_rate": 40, "batch_size": 30}
#: The write ceiling per realm: batch calls/min x batch size + the remaining single requests/min.
CEILING = LIMITS["batch_rate"] * LIMITS["batch_size"] + (LIMITS["rate_limit"] - LIMITS["batch_rate"])
ORIGINAL_DESIGN_PER_MINUTE = 50
DEFAULT_COUNTS = {"push-invoices": 5000, "push-naive": 5000, "import-customers": 5000, "enqueue": 5000,
                  "progress-api": 100_000, "multi-realm": 2000, "fleet-throughput": 500, "realtime-latency": 0,
                  "fleet-nightly": 200}
DEFAULT_REALMS = 20
#: CPU of one worker host in ms per minute (2 cores), for the on-paper "realms one host can feed".
HOST_CPU_MS_PER_MINUTE = 2 * 60_000
Write = Callable[[str], None]


def run(scenario: str, *, count: int | None = None, time_scale: float = 1.0, latency_ms: str | None = "100-400",
        workers: int | None = None, chunk_size: int | None = None, throttle: str = "database",
        naive_count: int | None = None, realms: int | None = None, clusters: int | None = None,
        saves: int | None = None, load_count: int | None = None, write: Write | None = None) -> dict[str, Any]:
    bench = Bench(time_scale=time_scale, latency_ms=latency_ms, chunk_size=chunk_size, throttle=throttle,
                  write=write or (lambda line: print(line, file=sys.stderr, flush=True)))
    logging.getLogger("qbo_sync").setLevel(logging.ERROR)
    func = {"push-invoices": bench.push_invoices, "push-naive": bench.push_naive,
            "import-customers": bench.import_customers, "enqueue": bench.enqueue,
            "progress-api": bench.progress_api, "multi-realm": bench.multi_realm,
            "fleet-throughput": bench.fleet_throughput, "realtime-latency": bench.realtime_latency,
            "fleet-nightly": bench.fleet_nightly}[scenario]
    kwargs: dict[str, Any] = {"count": count or DEFAULT_COUNTS[scenario]}
    if scenario in ("push-invoices", "push-naive", "multi-realm"):
        kwargs["workers"] = workers or (3 if scenario == "multi-realm" else 2)
    if scenario in ("fleet-throughput", "realtime-latency", "fleet-nightly"):  # django-q2 workers per cluster
        kwargs["workers"] = workers or 2
        kwargs["clusters"] = clusters or (1 if scenario == "realtime-latency" else 2)
    if scenario == "fleet-throughput":
        kwargs["realms"] = realms or DEFAULT_REALMS
    if scenario == "realtime-latency":
        kwargs.update(saves=saves or 50, load_count=load_count)
    if scenario == "push-naive":
        kwargs["naive_count"] = naive_count
    try:
        result = func(**kwargs)
    finally:
        bench.close()
    result.update(scenario=scenario, database=connections["default"].vendor, time_scale=time_scale,
                  peak_rss_mb=round(peak_rss_mb(), 1))
    return result


def purge_rows() -> dict[str, int]:
    """Rows of the tables the retention purge trims."""
    from qbo_sync.models import SyncLog, WebhookEvent

    return {"sync_log": SyncLog.objects.count(), "queue_items": QueueItem.objects.count(),
            "jobs": SyncJob.objects.count(), "webhook_events": WebhookEvent.objects.count()}


def children_cpu_seconds() -> float:
    """User + system CPU of the worker processes this process forked and waited for (the sandbox is a child too,
    but it is only waited for when it stops, after every measurement)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """The largest resident set of this process or any worker it waited for (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


class RemoteSandbox:
    """The bundled sandbox in its own process, driven through its ``/_sandbox/`` endpoints."""

    def __init__(self, *, time_scale: float, latency_ms: str | None) -> None:
        args = [sys.executable, "-m", "qbo_sync.sandbox", "--port", "0", "--time-scale", str(time_scale),
                "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET,
                *(f"--{k.replace('_', '-')}={v}" for k, v in LIMITS.items())]
        if latency_ms:
            args.append(f"--latency-ms={latency_ms}")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)  # noqa: S603
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if "listening on" not in line:
            self.proc.kill()
            raise RuntimeError(f"the sandbox did not start: {line!r}")
        self.base_url = line.strip().split()[-1]
        self.http = requests.Session()

    def _call(self, method: str, path: str, **body: Any) -> dict[str, Any]:
        response = self.http.request(method, f"{self.base_url}/_sandbox/{path}", json=body or None, timeout=30)
        response.raise_for_status()
        return response.json()

    def create_realm(self) -> str:
        return str(self._call("POST", "realms")["realmId"])

    def issue_tokens(self, realm: str) -> dict[str, Any]:
        return self._call("POST", "tokens", realm_id=realm)

    def configure(self, realm: str, **options: Any) -> None:
        self._call("POST", "configure", realm_id=realm, **options)

    def reset(self, realm: str) -> None:
        self._call("POST", "reset", realm_id=realm)

    def stats(self, realm: str) -> dict[str, Any]:
        return self.http.get(f"{self.base_url}/_sandbox/stats", params={"realm": realm}, timeout=30).json()

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def client(self, realm: str) -> QboClient:
        """A client that ignores the limits (setup and counting afterwards, on a realm with limits off)."""
        tokens = InMemoryTokenProvider(TokenSet.from_response(self.issue_tokens(realm)))
        return QboClient(realm, api_base_url=self.base_url, tokens=tokens,
                         throttle=InProcessThrottle(10**6, 100, 10**6, requests_per_second=None))

    def unlimited(self, realm: str) -> None:
        self.configure(realm, rate_limit=0, concurrency=0, batch_rate=0, latency_ms=None)

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Bench:
    def __init__(self, *, time_scale: float, latency_ms: str | None, chunk_size: int | None, throttle: str,
                 write: Write) -> None:
        self.time_scale = float(time_scale)
        self.latency_ms = latency_ms
        self.chunk_size = chunk_size
        self.throttle = throttle
        self.write = write
        self.rng = random.Random(11)
        self.sandbox: RemoteSandbox | None = None

    # --- setup ---------------------------------------------------------------------------------------------------

    def start_sandbox(self, latency_ms: str | None) -> RemoteSandbox:
        self.sandbox = sb = RemoteSandbox(time_scale=self.time_scale, latency_ms=latency_ms)
        settings.QBO_SYNC = {**settings.QBO_SYNC, "ENVIRONMENT": "local", "API_BASE_URL": sb.base_url,
                             "AUTH_BASE_URL": sb.base_url, "CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": CLIENT_SECRET}
        # Chunks of 300 (10 groups of 30): enough calls per chunk to keep several in flight (docs/performance.md).
        options: dict[str, Any] = {"TIME_SCALE": self.time_scale, "PUSH_DELAY_SECONDS": 0,
                                   "THROTTLE_BACKEND": self.throttle, "CHUNK_SIZE": self.chunk_size or 300}
        if self.throttle == "redis":
            settings.REDIS_URL = os.environ.get("QBO_BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
        settings.QBO_SYNC = {**settings.QBO_SYNC, **options}
        qbo_settings.reload()
        self.write(f"sandbox {sb.base_url}: {LIMITS['rate_limit']}/min, {LIMITS['concurrency']} in flight, "
                   f"{LIMITS['batch_rate']} batches/min of {LIMITS['batch_size']}, latency {latency_ms or 'off'} ms, "
                   f"time scale {self.time_scale:g}; throttle {self.throttle}")
        return sb

    def close(self) -> None:
        if self.sandbox is not None:
            self.sandbox.stop()

    def organization(self, n: int = 1) -> Organization:
        return Organization.objects.create(name=f"Bench Co {n}", slug=f"bench-{n}")

    def connect(self, org: Organization) -> str:
        assert self.sandbox is not None
        realm = self.sandbox.create_realm()
        connection = QboConnection(organization=org, realm_id=realm, environment="local",
                                   status=QboConnection.Status.CONNECTED)
        store_tokens(connection, TokenSet.from_response(self.sandbox.issue_tokens(realm)))
        connection.save()
        return realm

    def host_data(self, org: Organization, invoices: int, customers: int = 50, items: int = 20) -> list[Invoice]:
        with transaction.atomic():
            Customer.objects.bulk_create([
                Customer(organization=org, display_name=f"Bench Customer {org.pk}-{n:04d}",
                         company_name=f"Bench {n:04d} LLC", given_name="Pat", family_name=f"Bench{n}",
                         email=f"c{n}@example.com", bill_line1=f"{n} Market St", bill_city="San Francisco",
                         bill_region="CA", bill_postal_code="94105", bill_country="USA") for n in range(customers)])
            Item.objects.bulk_create([
                Item(organization=org, name=f"Bench Item {org.pk}-{n:03d}", sku=f"B{org.pk}-{n:03d}",
                     description=f"Bench item {n}", unit_price=Decimal(self.rng.randint(5, 200)) + Decimal("0.50"))
                for n in range(items)])
            all_customers = list(Customer.objects.filter(organization=org))
            all_items = list(Item.objects.filter(organization=org))
            today = timezone.localdate()
            batch = []
            for n in range(invoices):
                issue = today - dt.timedelta(days=self.rng.randint(0, 60))
                batch.append(Invoice(organization=org, number=f"B{org.pk}-{100001 + n}",
                                     customer=self.rng.choice(all_customers), issue_date=issue,
                                     due_date=issue + dt.timedelta(days=30)))
            Invoice.objects.bulk_create(batch, batch_size=500)
            saved = list(Invoice.objects.filter(organization=org).order_by("pk"))
            lines = []
            for invoice in saved:
                total = Decimal("0.00")
                for position in range(self.rng.randint(1, 3)):
                    item = self.rng.choice(all_items)
                    line = InvoiceLine(invoice=invoice, item=item, description=item.description,
                                       quantity=Decimal(self.rng.randint(1, 10)), unit_price=item.unit_price,
                                       position=position)
                    lines.append(line)
                    total += line.amount
                invoice.subtotal = invoice.total = invoice.amount_due = total
            InvoiceLine.objects.bulk_create(lines, batch_size=1000)
            Invoice.objects.bulk_update(saved, ["subtotal", "total", "amount_due"], batch_size=500)
        return saved

    def presync(self, orgs: Sequence[Organization]) -> None:
        """Customers and items go to QuickBooks first (not measured)."""
        started = [jobs.start_push(org.pk, entity) for org in orgs for entity in ("Customer", "Item")]
        drain_until_done([j.pk for j in started], None, 600)
        for job in SyncJob.objects.filter(pk__in=[j.pk for j in started]):
            if job.state != SyncJob.State.COMPLETED:
                raise RuntimeError(f"presync: {job.description} ended {job.state}")

    # --- the push scenarios --------------------------------------------------------------------------------------

    def push_setup(self, n_orgs: int, count: int) -> tuple[list[Organization], dict[int, str], list[Invoice]]:
        self.start_sandbox(self.latency_ms)
        orgs = [self.organization(n + 1) for n in range(n_orgs)]
        realms = {org.pk: self.connect(org) for org in orgs}
        began = time.monotonic()
        invoices = [inv for org in orgs for inv in self.host_data(org, count)]
        self.write(f"Batchly data: {len(orgs)} organization(s) x {count} invoices in {time.monotonic() - began:.1f} s")
        self.presync(orgs)
        return orgs, realms, invoices

    def measure_push(self, orgs: Sequence[Organization], realms: dict[int, str], count: int,
                     workers: int, clusters: Clusters | None = None) -> dict[str, Any]:
        """Push every organization's invoices and measure. Drained by ``workers`` forked processes, or, with
        ``clusters``, by those real django-q2 clusters (started by the caller; the jobs' kicks reach them)."""
        assert self.sandbox is not None
        before = {r: self.sandbox.stats(r) for r in realms.values()}
        cpu0 = self.sandbox.cpu_seconds()
        ours0 = children_cpu_seconds() if clusters is None else clusters.used_cpu_seconds()
        t0 = time.time()
        started = [jobs.start_push(org.pk, "Invoice") for org in orgs]
        job_ids = [j.pk for j in started]
        if clusters is None:
            retries = run_workers(job_ids, workers, self.write)
            worker_cpu = children_cpu_seconds() - ours0
        else:
            wait_for_jobs(job_ids, 3600, self.write)
            retries = -1  # not counted: the clusters log on their own
            worker_cpu = clusters.used_cpu_seconds() - ours0
        jobs_after = list(SyncJob.objects.filter(pk__in=job_ids))
        finished = [j.finished_at for j in jobs_after if j.finished_at]
        wall = (max(finished).timestamp() if len(finished) == len(jobs_after) else time.time()) - t0
        sandbox_cpu = self.sandbox.cpu_seconds() - cpu0
        qbo_minutes = wall * self.time_scale / 60
        requests_total = throttled = faults = created = duplicates = missing = 0
        by_kind: Counter[str] = Counter()
        for org in orgs:
            realm = realms[org.pk]
            after = self.sandbox.stats(realm)
            requests_total += after["requests_total"] - before[realm]["requests_total"]
            by_kind.update({k: v - before[realm]["requests"].get(k, 0) for k, v in after["requests"].items()})
            throttled += after["throttled_total"] - before[realm]["throttled_total"]
            faults += sum(after["faults_injected"].values()) - sum(before[realm]["faults_injected"].values())
            c, d, m = self.count_invoices(realm, org)
            created, duplicates, missing = created + c, duplicates + d, missing + m
        progress = [job_progress(j) for j in jobs_after]
        failed = sum(p.failures for p in progress)
        item_retries = sum(max(a - 1, 0) for a in QueueItem.objects.filter(job_id__in=job_ids)
                           .values_list("attempts", flat=True))
        per_minute = created / qbo_minutes if qbo_minutes else 0.0
        ceiling = CEILING * len(orgs)
        return {"invoices": count * len(orgs), "created": created, "workers": workers,
                "chunk_size": int(qbo_settings.CHUNK_SIZE), "wall_seconds": round(wall, 2),
                "qbo_minutes": round(qbo_minutes, 3), "writes_per_minute": round(per_minute, 1),
                "ceiling_per_minute": ceiling, "efficiency": round(per_minute / ceiling, 3),
                "requests": requests_total - sum(v for k, v in by_kind.items() if k.startswith("batch_")),
                "requests_by_kind": dict(+by_kind), "throttled_429": throttled, "faults": faults,
                "client_retries": retries, "item_retries": item_retries, "failed_items": failed,
                "duplicates": duplicates, "missing": missing, "sandbox_cpu_seconds": round(sandbox_cpu, 1),
                "worker_cpu_seconds": round(worker_cpu, 2),
                "cpu_ms_per_record": round(1000 * worker_cpu / max(created, 1), 2)}

    def count_invoices(self, realm: str, org: Organization) -> tuple[int, int, int]:
        """(present, duplicates, missing) of this organization's invoice numbers in QuickBooks."""
        assert self.sandbox is not None
        self.sandbox.unlimited(realm)
        client = self.sandbox.client(realm)
        try:
            counts = Counter(str(r.get("DocNumber")) for r in client.query_all("SELECT * FROM Invoice"))
        finally:
            client.close()
            self.sandbox.reset(realm)
        ours = set(Invoice.objects.filter(organization=org).values_list("number", flat=True))
        return (sum(1 for n in ours if counts[n]), sum(max(counts[n] - 1, 0) for n in ours),
                sum(1 for n in ours if not counts[n]))

    def push_invoices(self, count: int, workers: int) -> dict[str, Any]:
        orgs, realms, _ = self.push_setup(1, count)
        result = self.measure_push(orgs, realms, count, workers)
        result["table"] = push_table(result)
        return result

    def multi_realm(self, count: int, workers: int) -> dict[str, Any]:
        orgs, realms, _ = self.push_setup(3, count)
        result = self.measure_push(orgs, realms, count, workers)
        result["organizations"] = len(orgs)
        result["table"] = [("organizations", f"{len(orgs)} (one realm each)"), *push_table(result)]
        return result

    def clusters(self, n: int, workers: int = 2) -> Clusters:
        assert self.sandbox is not None
        from qbo_sync.services.schedules import install_schedules

        install_schedules()  # the minute safety-net drain, as a deployment has it
        clusters = Clusters(n, workers=workers, base_url=self.sandbox.base_url, time_scale=self.time_scale,
                            chunk_size=int(qbo_settings.CHUNK_SIZE), throttle=self.throttle)
        connections.close_all()
        clusters.start()
        self.write(f"{n} django-q2 cluster(s) of {workers} workers started")
        return clusters

    def fleet_throughput(self, count: int, workers: int, realms: int, clusters: int = 2) -> dict[str, Any]:
        """R organizations, one realm each, N invoices each, drained by real django-q2 clusters (``clusters`` of
        ``workers`` each; the jobs' own kicks and the minute schedule start the drains). Aggregate writes/min
        against the sum of the realms' ceilings, and our CPU per written invoice: every process of the clusters
        (from /proc; the sandbox and this process excluded)."""
        orgs, realm_ids, _ = self.push_setup(realms, count)
        running = self.clusters(clusters, workers)
        try:
            result = self.measure_push(orgs, realm_ids, count, workers * clusters, clusters=running)
            result["cluster_peak_rss_mb"] = round(running.peak_rss_mb(), 1)
            idle = running.idle_cpu_per_second * result["wall_seconds"]
            result.update(cluster_idle_cpu_seconds=round(idle, 2), cpu_ms_per_record_net_of_idle=round(
                1000 * max(result["worker_cpu_seconds"] - idle, 0) / max(result["created"], 1), 2))
        finally:
            running.stop()
        per_realm_ms = result["cpu_ms_per_record"] * CEILING
        result.update(organizations=len(orgs), clusters=clusters, workers_per_cluster=workers,
                      cpu_ms_per_realm_minute=round(per_realm_ms, 1),
                      realms_per_2_core_host=round(HOST_CPU_MS_PER_MINUTE / per_realm_ms, 1) if per_realm_ms else None)
        result["table"] = [("organizations", f"{len(orgs)} (one realm each) x {count:,} invoices"),
                           ("clusters", f"{clusters} x {workers} workers (manage.py qcluster)"), *push_table(result),
                           ("  of which idle clusters", f"{result['cluster_idle_cpu_seconds']} s (measured idle "
                            f"before the run) -> {result['cpu_ms_per_record_net_of_idle']} ms per invoice net"),
                           ("realms one 2-core host can feed (on paper)",
                            f"{result['realms_per_2_core_host']} (= 120,000 CPU ms/min / ({result['cpu_ms_per_record']}"
                            f" ms x {CEILING:,} writes/min))")]
        return result

    def realtime_latency(self, count: int, saves: int, load_count: int | None, clusters: int = 1,
                         workers: int = 2) -> dict[str, Any]:
        """A host save of one customer until QuickBooks shows it, with real django-q2 clusters and the save's own
        path (the save signal enqueues it PUSH_DELAY_SECONDS ahead and kicks a drain). ``saves`` saves at random
        moments (0.5-3 s apart). With ``load_count``, three other organizations each push that many invoices
        meanwhile; their efficiency is reported too."""
        sb = self.start_sandbox(self.latency_ms)
        loaded = bool(load_count)
        small = self.organization(1)
        small_realm = self.connect(small)
        customer = Customer.objects.create(organization=small, display_name="Realtime Customer",
                                           company_name="Realtime LLC", email="rt@example.com")
        others = [self.organization(n + 2) for n in range(3 if loaded else 0)]
        for org in others:
            self.connect(org)
        for org in others:
            self.host_data(org, load_count or 0)
        self.presync([small, *others])
        # The real save path from here on: the save's push delay and its kick (the bench's own setup skipped both).
        settings.QBO_SYNC = {k: v for k, v in settings.QBO_SYNC.items() if k != "PUSH_DELAY_SECONDS"}
        qbo_settings.reload()
        qbo_id = EntityMapping.objects.get(entity_type="Customer", object_id=str(customer.pk)).qbo_id
        running = self.clusters(clusters, workers)
        reader = sb.client(small_realm)
        latencies: list[float] = []
        loaded_latencies: list[float] = []
        job_ids: list[int] = []
        try:
            t_load = time.time()
            if loaded:
                job_ids = [jobs.start_push(org.pk, "Invoice").pk for org in others]
            for n in range(saves):
                time.sleep(self.rng.uniform(0.5, 3.0))
                name = f"Realtime Customer v{n + 1}"
                load_running = loaded and unfinished(job_ids)
                began = time.monotonic()
                customer.display_name = name
                customer.save()  # autocommit: the enqueue and the kick follow at once
                while time.monotonic() - began < 600:
                    if reader.read("Customer", qbo_id).get("DisplayName") == name:
                        break
                    time.sleep(0.1)
                latencies.append(time.monotonic() - began)
                if load_running:
                    loaded_latencies.append(latencies[-1])
            if loaded:
                wait_for_jobs(job_ids, 3600, self.write)
            cpu = running.used_cpu_seconds()
        finally:
            reader.close()
            running.stop()
        under_load = len(loaded_latencies)
        ordered = sorted(latencies)
        pick = lambda q, xs=ordered: round(xs[min(len(xs) - 1, int(q * len(xs)))], 2) if xs else None  # noqa: E731
        result: dict[str, Any] = {"saves": saves, "clusters": clusters, "workers_per_cluster": workers,
                                  "push_delay_seconds": float(qbo_settings.PUSH_DELAY_SECONDS),
                                  "latency_p50_s": pick(0.5), "latency_p95_s": pick(0.95),
                                  "latency_max_s": round(ordered[-1], 2), "latency_min_s": round(ordered[0], 2),
                                  "load_invoices_per_org": load_count or 0, "saves_under_load": under_load,
                                  "cluster_cpu_seconds": round(cpu, 1)}
        table = [("saves", f"{saves} of one customer at random moments, {clusters} cluster(s) x {workers} workers, "
                  f"push delay {result['push_delay_seconds']:g} s"),
                 ("save -> visible in QuickBooks", f"p50 {result['latency_p50_s']} s, p95 {result['latency_p95_s']} s,"
                  f" max {result['latency_max_s']} s (target p95 <= {30 if loaded else 5} s)")]
        if loaded:
            finished = list(SyncJob.objects.filter(pk__in=job_ids))
            effs = []
            for job in finished:
                done = QueueItem.objects.filter(job=job, status=QueueItem.Status.COMPLETED).count()
                end = job.finished_at.timestamp() if job.finished_at else time.time()
                minutes = (end - t_load) * self.time_scale / 60
                effs.append(done / minutes / CEILING if minutes else 0.0)
            loaded = sorted(loaded_latencies)
            result.update(load_efficiency=[round(e, 3) for e in effs], efficiency=round(min(effs), 3),
                          load_jobs_completed=sum(j.state == SyncJob.State.COMPLETED for j in finished),
                          under_load_p50_s=pick(0.5, loaded), under_load_p95_s=pick(0.95, loaded),
                          under_load_max_s=round(loaded[-1], 2) if loaded else None)
            table += [("load", f"3 organizations x {load_count:,} invoices; {under_load} of {saves} saves while "
                       "they ran"),
                      ("  of those saves", f"p50 {result['under_load_p50_s']} s, p95 {result['under_load_p95_s']} s, "
                       f"max {result['under_load_max_s']} s"),
                      ("load efficiency per realm", ", ".join(f"{e:.3f}" for e in effs) + " (target >= 0.85)")]
        result["table"] = table
        return result

    def fleet_nightly(self, count: int, customers: int = 50, items: int = 20, invoices: int = 100,
                      clusters: int = 2, workers: int = 2) -> dict[str, Any]:
        """``count`` organizations, each with customers, items and invoices already in QuickBooks and pulled once
        (their cursors set); then a tenth of each one's invoices get a payment in QuickBooks, and the nightly
        schedules' entry point (``qbo_sync.tasks.nightly_pull`` for payments, customers and items) is queued to
        real django-q2 clusters. Wall time to the last pull job done, requests, our CPU per pulled record (the
        pulls' own "seen" counts) and the clusters' peak RSS; then the retention purge on that data."""
        from django_q.tasks import async_task

        from qbo_sync.models import SyncLog
        from qbo_sync.services import retention
        from qbo_sync.tasks import PULL_ENTITIES, nightly_pull

        sb = self.start_sandbox(self.latency_ms)
        orgs = [self.organization(n + 1) for n in range(count)]
        realms = {org.pk: self.connect(org) for org in orgs}
        for realm in realms.values():
            sb.unlimited(realm)  # setup is not measured: QBO's limits come back before the nightly run
        began = time.monotonic()
        for org in orgs:
            self.host_data(org, invoices, customers=customers, items=items)
        setup = [jobs.start_push(org.pk, entity) for org in orgs for entity in ("Customer", "Item", "Invoice")]
        drain_until_done([j.pk for j in setup], None, 3600)
        first = [job_id for name in PULL_ENTITIES for job_id in nightly_pull(name)]
        drain_until_done(first, None, 3600)
        paid = 0
        for org in orgs:
            client = sb.client(realms[org.pk])
            try:
                ids = list(EntityMapping.objects.filter(organization_id=org.pk, entity_type="Invoice")
                           .exclude(qbo_id="").values_list("qbo_id", flat=True))
                for qbo_id in ids[: max(1, len(ids) // 10)]:
                    invoice = client.read("Invoice", qbo_id)
                    amount = round(float(invoice["TotalAmt"]) / 2, 2)
                    client.create("Payment", {"CustomerRef": invoice["CustomerRef"], "TotalAmt": amount, "Line": [
                        {"Amount": amount, "LinkedTxn": [{"TxnId": qbo_id, "TxnType": "Invoice"}]}]},
                        request_id=f"bench-pay-{org.pk}-{qbo_id}")
                    paid += 1
            finally:
                client.close()
        for realm in realms.values():
            sb.reset(realm)
        self.write(f"setup: {count} organizations in QuickBooks and pulled once, {paid} invoices paid there, "
                   f"{time.monotonic() - began:.1f} s")
        before = {r: sb.stats(r)["requests_total"] for r in realms.values()}
        last_job = SyncJob.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        running = self.clusters(clusters, workers)
        try:
            t0 = time.time()
            for name in PULL_ENTITIES:
                async_task("qbo_sync.tasks.nightly_pull", name, task_name=f"bench-nightly-{name}")
            expected = len(PULL_ENTITIES) * count
            deadline = time.monotonic() + 3600
            while time.monotonic() < deadline:
                new = SyncJob.objects.filter(pk__gt=last_job)
                if new.count() >= expected and not unfinished(list(new.values_list("pk", flat=True))):
                    break
                time.sleep(0.25)
            job_ids = list(SyncJob.objects.filter(pk__gt=last_job).values_list("pk", flat=True))
            finished = [f for f in SyncJob.objects.filter(pk__in=job_ids).values_list("finished_at", flat=True) if f]
            wall = (max(finished).timestamp() if finished else time.time()) - t0
            cpu = running.used_cpu_seconds()
            rss = running.peak_rss_mb()
        finally:
            running.stop()
        requests_total = sum(sb.stats(r)["requests_total"] - before[r] for r in realms.values())
        pulled = sum(int((d or {}).get("seen", 0)) for d in SyncLog.objects.filter(
            event="pulled", job_id__in=job_ids).values_list("data", flat=True))
        updated = sum(int((d or {}).get("updated", 0)) for d in SyncLog.objects.filter(
            event="pulled", job_id__in=job_ids).values_list("data", flat=True))
        states = Counter(SyncJob.objects.filter(pk__in=job_ids).values_list("state", flat=True))
        # The retention purge on this data, as if it ran a year later (every kind past its keep time).
        rows_before = purge_rows()
        t_purge = time.perf_counter()
        purged = retention.purge(timezone.now() + dt.timedelta(days=400))
        purge_seconds = time.perf_counter() - t_purge
        rows_after = purge_rows()
        result: dict[str, Any] = {
            "organizations": count, "customers_per_org": customers, "items_per_org": items,
            "invoices_per_org": invoices, "invoices_paid_in_qbo": paid, "clusters": clusters,
            "workers_per_cluster": workers, "jobs": len(job_ids), "jobs_by_state": dict(states),
            "wall_seconds": round(wall, 2), "qbo_minutes": round(wall * self.time_scale / 60, 3),
            "requests": requests_total, "pulled_records": pulled, "updated_records": updated,
            "cluster_cpu_seconds": round(cpu, 2), "cpu_ms_per_record": round(1000 * cpu / max(pulled, 1), 2),
            "cluster_peak_rss_mb": round(rss, 1), "purge_rows_before": rows_before, "purge_rows_after": rows_after,
            "purge_seconds": round(purge_seconds, 3), "purged": getattr(purged, "deleted", None)}
        result["table"] = [
            ("organizations", f"{count} x ({customers} customers, {items} items, {invoices} invoices); {paid} "
             "invoices paid in QuickBooks since the last pull"),
            ("clusters", f"{clusters} x {workers} workers; nightly_pull queued for {', '.join(PULL_ENTITIES)}"),
            ("jobs", f"{len(job_ids)} ({', '.join(f'{k} {v}' for k, v in states.items())})"),
            ("wall to the last job done", f"{wall:.1f} s = {result['qbo_minutes']:.2f} QBO minutes"),
            ("requests", f"{requests_total:,}"),
            ("pulled records (seen / updated)", f"{pulled:,} / {updated:,}"),
            ("our CPU (clusters)", f"{cpu:.2f} s = {result['cpu_ms_per_record']} ms per pulled record"),
            ("clusters' peak RSS", f"{rss:.1f} MB"),
            ("retention purge", f"rows {rows_before} -> {rows_after} in {purge_seconds:.3f} s"),
        ]
        return result

    def push_naive(self, count: int, workers: int, naive_count: int | None) -> dict[str, Any]:
        orgs, realms, invoices = self.push_setup(1, count)
        ours = self.measure_push(orgs, realms, count, workers)
        sample = invoices[: naive_count or min(count, 500)]
        naive = self.naive_loop(orgs[0], sample)
        ratio = ours["writes_per_minute"] / naive["writes_per_minute"] if naive["writes_per_minute"] else None
        result = {**ours, **{f"naive_{k}": v for k, v in naive.items()},
                  "ratio": round(ratio, 2) if ratio else None,
                  "ratio_vs_original_design": round(ours["writes_per_minute"] / ORIGINAL_DESIGN_PER_MINUTE, 1)}
        result["table"] = [*push_table(ours),
                           ("naive loop (python-quickbooks)", f"{naive['created']} of {naive['invoices']} invoices "
                            f"one create each in {naive['wall_seconds']:.1f} s = {naive['qbo_minutes']:.2f} QBO min, "
                            f"{naive['writes_per_minute']:,.0f}/min, {naive['failed']} failed"),
                           ("ratio ours / naive", f"{result['ratio']}x (target >= 4x)"),
                           ("ratio ours / original 50/min", f"{result['ratio_vs_original_design']}x (target >= 25x)")]
        return result

    def naive_loop(self, org: Organization, invoices: Sequence[Invoice]) -> dict[str, Any]:
        """The same invoices the way a user would push them without qbo_sync: python-quickbooks, one create per
        invoice in a loop, in a realm of its own (customers and items copied there first, not measured)."""
        os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")  # requests-oauthlib: plain http to the sandbox
        from intuitlib.client import AuthClient
        from intuitlib.enums import Scopes
        from quickbooks import QuickBooks
        from quickbooks.exceptions import QuickbooksException
        from quickbooks.objects.base import Ref
        from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
        from quickbooks.objects.invoice import Invoice as QbInvoice

        assert self.sandbox is not None
        sb = self.sandbox
        realm = sb.create_realm()
        sb.unlimited(realm)
        setup = sb.client(realm)
        ids: dict[tuple[str, int], str] = {}
        for entity, rows in (("Customer", Customer.objects.filter(organization=org)),
                             ("Item", Item.objects.filter(organization=org))):
            for row in rows:
                payload = ({"DisplayName": row.display_name} if entity == "Customer" else
                           {"Name": row.name, "Type": "Service", "UnitPrice": float(row.unit_price),
                            "IncomeAccountRef": {"value": "1"}})
                ids[(entity, row.pk)] = str(setup.create(entity, payload, request_id=f"naive-{entity}-{row.pk}")["Id"])
        setup.close()
        sb.reset(realm)
        auth = AuthClient(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uri="http://localhost/cb",
                          environment=f"{sb.base_url}/.well-known/openid_sandbox_configuration")
        url = auth.get_authorization_url([Scopes.ACCOUNTING]) + f"&realm_id={realm}"
        location = requests.get(url, allow_redirects=False, timeout=10).headers["Location"]
        from urllib.parse import parse_qs, urlsplit

        back = parse_qs(urlsplit(location).query)
        auth.get_bearer_token(back["code"][0], realm_id=back["realmId"][0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            qb = QuickBooks(auth_client=auth, refresh_token=auth.refresh_token, company_id=realm, minorversion=75)
        qb.api_url_v3 = f"{sb.base_url}/v3"
        prepared = list(Invoice.objects.filter(pk__in=[i.pk for i in invoices]).prefetch_related("lines"))
        before = sb.stats(realm)
        created = failed = 0
        began = time.monotonic()
        for invoice in prepared:
            qb_invoice = QbInvoice()
            qb_invoice.DocNumber = invoice.number
            qb_invoice.CustomerRef = Ref()
            qb_invoice.CustomerRef.value = ids[("Customer", invoice.customer_id)]
            qb_invoice.TxnDate = invoice.issue_date.isoformat()
            for line in invoice.lines.all():
                detail = SalesItemLineDetail()
                detail.ItemRef = Ref()
                detail.ItemRef.value = ids[("Item", line.item_id)]
                detail.Qty = float(line.quantity)
                detail.UnitPrice = float(line.unit_price)
                qb_line = SalesItemLine()
                qb_line.Amount = float(line.amount)
                qb_line.Description = line.description
                qb_line.SalesItemLineDetail = detail
                qb_invoice.Line.append(qb_line)
            try:
                qb_invoice.save(qb=qb)
                created += 1
            except QuickbooksException:
                failed += 1
        wall = time.monotonic() - began
        after = sb.stats(realm)
        qbo_minutes = wall * self.time_scale / 60
        return {"invoices": len(prepared), "created": created, "failed": failed, "wall_seconds": round(wall, 2),
                "qbo_minutes": round(qbo_minutes, 3),
                "writes_per_minute": round(created / qbo_minutes, 1) if qbo_minutes else 0.0,
                "throttled_429": after["throttled_total"] - before["throttled_total"]}

    # --- import, enqueue, progress -------------------------------------------------------------------------------

    def import_customers(self, count: int) -> dict[str, Any]:
        sb = self.start_sandbox(None)  # latency off: this measures our side
        org = self.organization()
        realm = self.connect(org)
        sb.unlimited(realm)
        setup = sb.client(realm)
        from qbo_sync.client import BatchOperation

        for start in range(0, count, 30):
            ops = [BatchOperation(bid=f"c{n}", operation="create", entity="Customer",
                                  payload={"DisplayName": f"QBO Customer {n:06d}", "GivenName": "Sam",
                                           "FamilyName": f"Books{n}", "CompanyName": f"Books {n} Ltd",
                                           "PrimaryEmailAddr": {"Address": f"q{n}@example.com"}})
                   for n in range(start, min(start + 30, count))]
            setup.batch(ops, request_id=f"bench-setup-{start}")
        setup.close()
        sb.reset(realm)  # QBO's limits again (latency stays off)
        before = sb.stats(realm)["requests_total"]
        job = jobs.start_pull(org.pk, "Customer", full=True)
        cpu0, t0 = time.process_time(), time.monotonic()
        drain_until_done([job.pk], org.pk, 3600)
        wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
        imported = EntityMapping.objects.filter(organization_id=org.pk, entity_type="Customer").count()
        rows = Customer.objects.filter(organization=org).count()
        stats = sb.stats(realm)
        result = {"customers_in_qbo": count, "imported": rows, "mappings": imported, "wall_seconds": round(wall, 2),
                  "cpu_seconds": round(cpu, 2), "cpu_ms_per_record": round(1000 * cpu / max(rows, 1), 3),
                  "requests": stats["requests_total"] - before, "throttled_429": stats["throttled_total"],
                  "duplicates": max(rows - count, 0), "missing": max(count - rows, 0),
                  "job_state": SyncJob.objects.get(pk=job.pk).state}
        result["table"] = [("customers in QuickBooks", f"{count:,}"), ("imported into Batchly", f"{rows:,}"),
                           ("wall", f"{wall:.2f} s (target <= 10 s, SQLite)"),
                           ("our CPU", f"{cpu:.2f} s = {result['cpu_ms_per_record']:.3f} ms/record "
                            "(target <= 1.5 ms; sandbox excluded, it runs in another process)"),
                           ("requests / 429s", f"{result['requests']} / {result['throttled_429']}")]
        return result

    def enqueue(self, count: int, repeat: int = 5) -> dict[str, Any]:
        self.start_sandbox(None)
        org = self.organization()
        self.connect(org)
        ids = [str(i.pk) for i in self.host_data(org, count)]
        times = []
        profile_dir = os.environ.get("QBO_BENCH_PROFILE")
        for n in range(repeat):
            profiler = None
            if profile_dir and n == 0:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            began = time.perf_counter()
            job = jobs.start_push(org.pk, "Invoice", ids, description="sync selected")
            times.append(time.perf_counter() - began)
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(os.path.join(profile_dir, "enqueue.prof"))
            assert job.total == count
            QueueItem.objects.filter(job=job).delete()
            job.delete()
        result = {"invoices": count, "repeats": repeat, "seconds": round(statistics.median(times), 3),
                  "seconds_min": round(min(times), 3), "seconds_max": round(max(times), 3)}
        result["table"] = [("bulk 'sync selected'", f"{count:,} invoices, {repeat} times"),
                           ("seconds until the job exists", f"median {result['seconds']:.3f} (min "
                            f"{result['seconds_min']:.3f}, max {result['seconds_max']:.3f}; target <= 1 s)")]
        return result

    def progress_api(self, count: int, n_jobs: int = 50, requests_n: int = 200) -> dict[str, Any]:
        self.start_sandbox(None)
        org = self.organization()
        self.connect(org)
        n_jobs = max(1, min(n_jobs, count))
        per_job = max(count // n_jobs, 1)
        began = time.monotonic()
        job_ids = []
        for j in range(n_jobs):
            job = queue.create_job(org.pk, SyncJob.Kind.PUSH, "Invoice",
                                   [str(j * per_job + n) for n in range(per_job)], QueueItem.Operation.PUSH,
                                   description=f"bench job {j}")
            job_ids.append(job.pk)
            items = QueueItem.objects.filter(job_id=job.pk).order_by("pk").values_list("pk", flat=True)
            done = list(items[: int(per_job * self.rng.uniform(0.2, 0.95))])
            now = timezone.now()
            for start in range(0, len(done), 900):
                QueueItem.objects.filter(pk__in=done[start:start + 900]).update(
                    status=QueueItem.Status.COMPLETED, completed_at=now, attempts=1)
            SyncJob.objects.filter(pk=job.pk).update(state=SyncJob.State.RUNNING, started_at=now)
        self.write(f"{per_job * n_jobs:,} queue items in {n_jobs} jobs in {time.monotonic() - began:.1f} s")
        user = get_user_model().objects.create(username="bench", is_staff=True)
        Membership.objects.create(user=user, organization=org, role=Membership.Role.OWNER)
        endpoint, timings, cpu, queries = self.time_progress_endpoint(user, job_ids, requests_n)
        direct = []
        for _ in range(requests_n):
            job = SyncJob.objects.get(pk=self.rng.choice(job_ids))
            t = time.perf_counter()
            job_progress(job)
            direct.append(time.perf_counter() - t)
        p = percentiles(timings)
        c = percentiles(cpu)
        d = percentiles(direct)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        result = {"queue_items": per_job * n_jobs, "jobs": n_jobs, "requests": requests_n, "endpoint": endpoint,
                  "p50_ms": p[0], "p95_ms": p[1], "cpu_p50_ms": c[0], "cpu_p95_ms": c[1],
                  "queries_per_request": queries, "service_p50_ms": d[0], "service_p95_ms": d[1],
                  "load_average_1min": round(load, 1) if load is not None else None}
        result["table"] = [("queue items / jobs", f"{result['queue_items']:,} / {n_jobs}"),
                           (endpoint, f"p50 {p[0]:.1f} ms, p95 {p[1]:.1f} ms over {requests_n} requests "
                            "(target p95 <= 25 ms)"),
                           ("its CPU in this process", f"p50 {c[0]:.1f} ms, p95 {c[1]:.1f} ms (the database "
                            "server's own CPU not included on PostgreSQL)"),
                           ("queries per request", str(queries)),
                           ("job_progress() alone", f"p50 {d[0]:.1f} ms, p95 {d[1]:.1f} ms"),
                           ("load average (1 min) at the end", str(result["load_average_1min"]))]
        return result

    def time_progress_endpoint(self, user: Any, job_ids: list[int],
                               n: int) -> tuple[str, list[float], list[float], int]:
        """GET /api/qbo/jobs/{id}/ through the whole Django stack (test client, logged in): wall times, this thread's
        CPU times and the queries of one request; the service alone when the host does not mount the API."""
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext, override_settings
        from django.urls import NoReverseMatch, reverse

        try:
            reverse("qbo_sync_api:job-detail", args=[job_ids[0]])
        except NoReverseMatch:
            times, cpu = [], []
            for _ in range(n):
                job = SyncJob.objects.get(pk=self.rng.choice(job_ids))
                t, c = time.perf_counter(), time.thread_time()
                job_progress(job)
                times.append(time.perf_counter() - t)
                cpu.append(time.thread_time() - c)
            return "job_progress() (the API is not mounted)", times, cpu, 2
        client = Client()
        client.force_login(user)
        times, cpu = [], []
        with override_settings(ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"]):
            for k in range(n + 10):
                url = reverse("qbo_sync_api:job-detail", args=[self.rng.choice(job_ids)])
                t, c = time.perf_counter(), time.thread_time()
                response = client.get(url)
                elapsed, used = time.perf_counter() - t, time.thread_time() - c
                if response.status_code != 200:
                    raise RuntimeError(f"GET {url} answered {response.status_code}: {response.content[:200]!r}")
                if k >= 10:  # the first few warm caches up
                    times.append(elapsed)
                    cpu.append(used)
            with CaptureQueriesContext(connection) as captured:
                client.get(reverse("qbo_sync_api:job-detail", args=[job_ids[0]]))
        return "GET /api/qbo/jobs/{id}/", times, cpu, len(captured.captured_queries)


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return round(pick(0.5), 2), round(pick(0.95), 2)


def push_table(r: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("invoices", f"{r['invoices']:,} ({r['workers']} worker process(es), chunks of {r['chunk_size']})"),
        ("time", f"{r['wall_seconds']:.1f} s wall = {r['qbo_minutes']:.2f} QBO minutes"),
        ("writes/min (QBO minutes)", f"{r['writes_per_minute']:,.0f}"),
        ("ceiling", f"{r['ceiling_per_minute']:,}/min"),
        ("efficiency", f"{r['efficiency']:.3f}"),
        ("requests / 429s / faults", f"{r['requests']} / {r['throttled_429']} / {r['faults']}"),
        ("retries (client / queue items)",
         f"{r['client_retries'] if r['client_retries'] >= 0 else 'not counted'} / {r['item_retries']}"),
        ("failed items", str(r["failed_items"])),
        ("duplicates / missing in QBO", f"{r['duplicates']} / {r['missing']}"),
        ("sandbox CPU (other process)", f"{r['sandbox_cpu_seconds']} s"),
        ("our CPU (worker processes)", f"{r['worker_cpu_seconds']} s = {r['cpu_ms_per_record']} ms per written "
         "invoice (target <= 2 ms)"),
    ]


# --- real django-q2 clusters -----------------------------------------------------------------------------------------


def process_tree(root: int) -> list[int]:
    """``root`` and every live descendant (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(parents.get(pid, []))
    return tree


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU of a process tree: each live process's own time plus what its ended children used."""
    total = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


def tree_peak_rss_mb(root: int) -> float:
    peak = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                peak = max([peak, *(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))])
        except (OSError, ValueError):
            continue
    return peak / 1024


class Clusters:
    """``n`` real django-q2 clusters (``manage.py qcluster``, 2 workers each, their own process groups) on this
    scenario's database, configured like this process (benchmarks/bench_settings.py). Their CPU is read from /proc
    for the whole process tree of each, the sandbox excluded (it is not their child)."""

    def __init__(self, n: int, *, workers: int, base_url: str, time_scale: float, chunk_size: int,
                 throttle: str) -> None:
        import tempfile

        self.n, self.workers = n, workers
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.bench_settings",
                    "Q_WORKERS": str(workers), "QBO_API_BASE_URL": base_url, "QBO_AUTH_BASE_URL": base_url,
                    "QBO_CLIENT_ID": CLIENT_ID, "QBO_CLIENT_SECRET": CLIENT_SECRET,
                    "QBO_BENCH_TIME_SCALE": str(time_scale), "QBO_BENCH_CHUNK_SIZE": str(chunk_size),
                    "QBO_BENCH_THROTTLE": throttle, "LOG_LEVEL": "ERROR", "QBO_SYNC_LOG_LEVEL": "ERROR",
                    "PYTHONPATH": str(settings.BASE_DIR)}
        self.logdir = tempfile.mkdtemp(prefix="qbo_bench_clusters_")
        self.procs: list[subprocess.Popen] = []
        self.cpu0 = self.idle_cpu_per_second = 0.0

    def start(self) -> None:
        for k in range(self.n):
            log = open(os.path.join(self.logdir, f"qcluster-{k}.log"), "w")
            self.procs.append(subprocess.Popen(
                [sys.executable, "manage.py", "qcluster"], cwd=str(settings.BASE_DIR), env=self.env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True))
        # Ready when every cluster has its workers (they import Django: a second or two each).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(len(process_tree(p.pid)) >= self.workers + 2 for p in self.procs):
                break
            time.sleep(0.2)
        time.sleep(1.0)
        # What the idle clusters burn (their pollers, monitors and schedulers), to tell it from the work's CPU.
        idle0, t_idle = self.cpu_seconds(), time.monotonic()
        time.sleep(5.0)
        self.idle_cpu_per_second = (self.cpu_seconds() - idle0) / (time.monotonic() - t_idle)
        self.cpu0 = self.cpu_seconds()

    def cpu_seconds(self) -> float:
        return sum(tree_cpu_seconds(p.pid) for p in self.procs)

    def used_cpu_seconds(self) -> float:
        """CPU since :meth:`start` finished (start-up excluded)."""
        return self.cpu_seconds() - self.cpu0

    def peak_rss_mb(self) -> float:
        return max((tree_peak_rss_mb(p.pid) for p in self.procs), default=0.0)

    def stop(self) -> None:
        import signal

        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=10)


def wait_for_jobs(job_ids: Sequence[int], timeout: float, write: Write) -> None:
    deadline = last = time.monotonic()
    deadline += timeout
    while unfinished(job_ids) and time.monotonic() < deadline:
        time.sleep(0.25)
        if time.monotonic() - last >= 10:
            last = time.monotonic()
            done = QueueItem.objects.filter(job_id__in=job_ids, status=QueueItem.Status.COMPLETED).count()
            total = QueueItem.objects.filter(job_id__in=job_ids).count()
            write(f"  {done:,}/{total:,} items done")


# --- drain helpers -------------------------------------------------------------------------------------------------


def unfinished(job_ids: Sequence[int]) -> bool:
    return SyncJob.objects.filter(pk__in=job_ids, state__in=[SyncJob.State.PENDING, SyncJob.State.RUNNING]).exists()


def drain_until_done(job_ids: Sequence[int], organization_id: int | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while unfinished(job_ids) and time.monotonic() < deadline:
        report = drain(budget_seconds=60, organization_id=organization_id)
        if not report.claimed:
            nxt = (QueueItem.objects.filter(job_id__in=job_ids, status=QueueItem.Status.PENDING)
                   .order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first())
            if nxt is None:
                time.sleep(0.02)
                continue
            time.sleep(min(1.0, max(0.02, (nxt - timezone.now()).total_seconds())))


class _RetryCounter(logging.Handler):
    def __init__(self, counter: Any) -> None:
        super().__init__(logging.WARNING)
        self.counter = counter

    def emit(self, record: logging.LogRecord) -> None:
        if "retry in" in str(record.msg):
            with self.counter.get_lock():
                self.counter.value += 1


def _worker(job_ids: list[int], counter: Any, timeout: float) -> None:
    from django.core.cache import cache

    # Start like a fresh django-q2 worker: nothing of the parent's per-process cache (LocMem) is inherited. (The
    # queue's fair pick no longer keeps its stamps there; they are a database column shared by every worker.)
    cache.clear()
    client_log = logging.getLogger("qbo_sync.client.http")
    client_log.setLevel(logging.WARNING)
    client_log.addHandler(_RetryCounter(counter))
    client_log.propagate = False
    profile_dir = os.environ.get("QBO_BENCH_PROFILE")  # a directory: one cProfile file per worker
    profiler = None
    if profile_dir:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        drain_until_done(job_ids, None, timeout)
    finally:
        connections.close_all()
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(os.path.join(profile_dir, f"worker-{os.getpid()}.prof"))


def run_workers(job_ids: list[int], workers: int, write: Write, timeout: float = 3600) -> int:
    """Drain the jobs with ``workers`` forked processes (like django-q2 workers: each its own client and
    connections, the throttle shared through the database or Redis), printing progress; returns client retries."""
    from qbo_sync.services.ratelimit import reset_throttles
    from qbo_sync.services.sessions import close_sessions

    connections.close_all()
    close_sessions()
    reset_throttles()
    ctx = multiprocessing.get_context("fork")
    counter = ctx.Value("i", 0)
    procs = [ctx.Process(target=_worker, args=(job_ids, counter, timeout), name=f"bench-worker-{n}")
             for n in range(workers)]
    for p in procs:
        p.start()
    last = time.monotonic()
    while any(p.is_alive() for p in procs):
        time.sleep(0.2)
        if time.monotonic() - last >= 5:
            last = time.monotonic()
            for job in SyncJob.objects.filter(pk__in=job_ids):
                p = job_progress(job)
                write(f"  {job.description}: {p.done}/{p.total} ({p.percent:.0f}%), "
                      f"{p.rate_per_minute or 0:,.0f}/min real time")
            connections.close_all()
    for p in procs:
        p.join()
    return int(counter.value)
