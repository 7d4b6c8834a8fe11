"""The durable queue: enqueue, claim with a lease, record outcomes, retry, cancel, reap.

Our ``QueueItem`` rows are the source of truth; django-q2 tasks only trigger drains (``qbo_sync.tasks``), so a lost
or repeated task loses and doubles nothing:

- a worker *claims* a chunk of one organization's due items by writing a lease (``lease_owner`` unique per claim,
  ``lease_expires_at``) with ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL or an atomic conditional ``UPDATE``
  elsewhere (SQLite serialises writers), so two workers never hold the same item;
- its outcomes are written only to rows it still leases, so a worker that lost its lease cannot overwrite the result
  of the worker that reclaimed the item;
- a crashed worker's lease runs out and ``reap_expired_leases`` puts the items back (one attempt spent, so an item
  that kills its worker every time ends ``dead`` instead of looping).

Real-time items (no job) coalesce: the partial unique constraint ``uniq_pending_realtime_item`` keeps one pending
item per (organization, entity, object, operation). An item that goes back to pending while a newer pending sibling
exists is *superseded* (cancelled, the newer one carries the latest data with a fresh ``requestid``).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.apps import apps
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Exists, F, Min, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone

from qbo_sync.conf import qbo_settings
from qbo_sync.models import QboConnection, QueueItem, SyncJob
from qbo_sync.models.base import ORGANIZATION_MODEL
from qbo_sync.models.queue import new_idempotency_key
from qbo_sync.services.outcomes import Outcome, Result

logger = logging.getLogger(__name__)

Status = QueueItem.Status
Priority = QueueItem.Priority

#: Rows per INSERT in ``enqueue`` (SQLite allows 32,766 variables; a QueueItem row has ~18).
BATCH_SIZE = 500
#: Ids per query when ``enqueue`` checks that the rows are the organization's (one parameter each; SQLite allows
#: 32,766 parameters, PostgreSQL 65,535).
CHECK_BATCH_SIZE = 5000
#: Seconds a ``wait`` outcome (connection needs re-authorisation) defers an item when it gives no ``retry_after``.
WAIT_SECONDS = 60
#: Picks ``claim_chunk`` tries before it claims without a turn of its own (other workers keep taking its picks).
_PICK_ATTEMPTS = 5
#: Times ``apply_outcomes`` re-runs when a concurrent enqueue creates a pending sibling mid-transaction.
_CONFLICT_RETRIES = 3


# --- enqueue ------------------------------------------------------------------------------------------------------

def enqueue(organization_id: int, entity_type: str, object_ids: Iterable[Any], operation: str, *,
            job: SyncJob | None = None, priority: int | None = None, delay: float = 0, kick: bool = True) -> int:
    """Queue ``operation`` for each host object; returns how many items were created.

    Without ``job`` the items are real-time (priority REALTIME by default) and coalesce: an object that already has a
    pending real-time item for this operation gets no second one. A job's items (priority BULK by default) are never
    coalesced away. ``delay`` seconds postpone the first attempt (to coalesce bursts of saves). After the commit a
    drain is kicked (``qbo_sync.tasks.kick``, which is :func:`qbo_sync.services.wakeup.kick`).
    """
    ids = list(dict.fromkeys(str(pk) for pk in object_ids))  # unique, order kept
    if not ids:
        return 0
    refuse_foreign_rows(organization_id, entity_type, ids)
    if priority is None:
        priority = Priority.BULK if job is not None else Priority.REALTIME
    due = timezone.now() + timedelta(seconds=delay)
    def build(pks: list[str]) -> list[QueueItem]:
        return [QueueItem(organization_id=organization_id, job=job, entity_type=entity_type, object_id=pk,
                          operation=operation, priority=priority, next_attempt_at=due) for pk in pks]

    created = 0
    with transaction.atomic():
        if job is not None:  # a job's items are never coalesced
            created = _insert_job_items(organization_id, job, entity_type, ids, operation, priority, due)
        for start in range(0, len(ids) if job is None else 0, BATCH_SIZE):
            batch = ids[start:start + BATCH_SIZE]
            existing = set(QueueItem.objects.filter(
                organization_id=organization_id, entity_type=entity_type, operation=operation,
                status=Status.PENDING, job__isnull=True, object_id__in=batch,
            ).values_list("object_id", flat=True))
            rows = build([pk for pk in batch if pk not in existing])
            # ignore_conflicts: a concurrent enqueue of the same object won the race; we coalesce into its item.
            QueueItem.objects.bulk_create(rows, batch_size=BATCH_SIZE, ignore_conflicts=True)
            created += len(rows)
    if created and kick:
        _kick_on_commit()
    return created


def refuse_foreign_rows(organization_id: int, entity_type: str, ids: Sequence[str]) -> None:
    """Raise ``QboForeignRowError`` when a row of another organization is handed to this organization's sync: it
    would be written into this organization's QuickBooks company (nothing is queued; the push refuses it too)."""
    from qbo_sync.adapters import get_adapter
    from qbo_sync.exceptions import QboConfigurationError, QboForeignRowError
    from qbo_sync.services.mappings import foreign_rows

    try:
        adapter = get_adapter(entity_type)
    except QboConfigurationError:
        return  # no host model behind this entity: nothing of anyone's
    foreign: list[str] = []
    for start in range(0, len(ids), CHECK_BATCH_SIZE):
        foreign.extend(foreign_rows(adapter, organization_id, ids[start:start + CHECK_BATCH_SIZE]))
    if foreign:
        shown = ", ".join(foreign[:10]) + (" …" if len(foreign) > 10 else "")
        raise QboForeignRowError(f"{entity_type} {shown} belongs to another organization; nothing was queued.")


def _insert_job_items(organization_id: int, job: SyncJob, entity_type: str, ids: list[str], operation: str,
                      priority: int, due: datetime) -> int:
    """INSERT a job's items with ``executemany`` in batches of BATCH_SIZE rows.

    Equivalent to ``bulk_create`` (same columns, values prepared by the fields once), without its per-value
    preparation and SQLite's 999-parameter batches: 5,000 items are ten statements and well under a second.
    """
    now = timezone.now()
    constant = {
        "organization": organization_id, "job": job.pk, "entity_type": entity_type, "qbo_id": "",
        "operation": operation, "status": Status.PENDING, "priority": priority, "attempts": 0,
        "next_attempt_at": due, "lease_owner": "", "lease_expires_at": None, "last_error": "", "error_code": "",
        "created_at": now, "updated_at": now, "completed_at": None,
    }
    fields = [f for f in QueueItem._meta.concrete_fields if not f.primary_key]
    columns = [f.column for f in fields if f.column is not None]  # every concrete field has its column
    names = {f.name for f in fields}
    if names != {*constant, "object_id", "idempotency_key"} or len(columns) != len(fields):
        # the model changed: take the slow, safe path
        QueueItem.objects.bulk_create([QueueItem(organization_id=organization_id, job=job, entity_type=entity_type,
                                                 object_id=pk, operation=operation, priority=priority,
                                                 next_attempt_at=due) for pk in ids], batch_size=BATCH_SIZE)
        return len(ids)
    prepared = {f.name: f.get_db_prep_save(constant[f.name], connection) for f in fields if f.name in constant}
    quote = connection.ops.quote_name
    # Only the model's own table and column names are interpolated; every value is a parameter.
    placeholders = ", ".join(["%s"] * len(fields))
    sql = (f"INSERT INTO {quote(QueueItem._meta.db_table)} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608
           f"VALUES ({placeholders})")
    with connection.cursor() as cursor:
        for start in range(0, len(ids), BATCH_SIZE):
            rows = []
            for pk in ids[start:start + BATCH_SIZE]:
                values = {**prepared, "object_id": pk, "idempotency_key": new_idempotency_key()}
                rows.append([values[f.name] for f in fields])
            cursor.executemany(sql, rows)
    return len(ids)


def create_job(organization_id: int, kind: str, entity_type: str, object_ids: Iterable[Any], operation: str,
               user: Any = None, description: str = "", options: dict[str, Any] | None = None) -> SyncJob:
    """A bulk operation ("push these 500 invoices") as one job with one BULK item per object (a bounded number of
    queries whatever the size: one INSERT per ``BATCH_SIZE`` items)."""
    ids = list(dict.fromkeys(str(pk) for pk in object_ids))
    with transaction.atomic():
        job = SyncJob.objects.create(organization_id=organization_id, kind=kind, entity_type=entity_type,
                                     total=len(ids), description=description[:255], options=options or {},
                                     started_by=user)
        enqueue(organization_id, entity_type, ids, operation, job=job)
        if not ids:
            _finish(job, SyncJob.State.COMPLETED)
    return job


def start_pull(organization_id: int, entity_type: str, full: bool = False, user: Any = None,
               description: str = "", since: datetime | None = None) -> SyncJob:
    """Start a pull of ``entity_type`` for the organization, or return the one still pending/running.

    One active pull per (organization, entity): a second nightly firing, a webhook burst or an admin click during a
    run attaches to the existing job instead of starting another. The job holds one ``pull`` item (no object id);
    the pull processor (``services/pull.py``) gives it its meaning (``job.options["full"]``, and ``"since"``: read
    changes since then instead of since the cursor).
    """
    with transaction.atomic():
        # Serialise concurrent starts for this organization (SQLite's IMMEDIATE transactions already do).
        model = apps.get_model(ORGANIZATION_MODEL)
        list(model._default_manager.select_for_update().filter(pk=organization_id).values_list("pk", flat=True))
        active = SyncJob.objects.filter(
            organization_id=organization_id, kind=SyncJob.Kind.PULL, entity_type=entity_type,
            state__in=[SyncJob.State.PENDING, SyncJob.State.RUNNING],
        ).order_by("created_at").first()
        if active is not None:
            return active
        options: dict[str, Any] = {"full": bool(full)}
        if since is not None:
            options["since"] = since.astimezone(UTC).isoformat()
            description = description or f"Pull of {entity_type} changed since {options['since']}"
        job = SyncJob.objects.create(
            organization_id=organization_id, kind=SyncJob.Kind.PULL, entity_type=entity_type, total=1,
            description=description or f"{'Full' if full else 'Incremental'} pull of {entity_type}",
            options=options, started_by=user,
        )
        QueueItem.objects.create(organization_id=organization_id, job=job, entity_type=entity_type, object_id="",
                                 qbo_id="", operation=QueueItem.Operation.PULL, priority=Priority.BULK,
                                 next_attempt_at=timezone.now())
    _kick_on_commit()
    return job


def start_repull(organization_id: int, entity_type: str, qbo_ids: Iterable[str], *, description: str = "") -> SyncJob:
    """A reconciliation repair: one job (kind ``reconcile``) holding one pull item per QuickBooks id; the pull
    processor reads each record by id and applies it (a customer or item merged, an invoice's payment state)."""
    ids = list(dict.fromkeys(str(i) for i in qbo_ids if i))
    now = timezone.now()
    with transaction.atomic():
        job = SyncJob.objects.create(organization_id=organization_id, kind=SyncJob.Kind.RECONCILE,
                                     entity_type=entity_type, total=len(ids), options={"full": False, "repull": True},
                                     description=(description or f"Re-pull {len(ids)} {entity_type} record(s) "
                                                  "(reconciliation repair)")[:255])
        QueueItem.objects.bulk_create([
            QueueItem(organization_id=organization_id, job=job, entity_type=entity_type, object_id="", qbo_id=qbo_id,
                      operation=QueueItem.Operation.PULL, priority=Priority.BULK, next_attempt_at=now)
            for qbo_id in ids], batch_size=BATCH_SIZE)
        if not ids:
            _finish(job, SyncJob.State.COMPLETED)
    _kick_on_commit()
    return job


# --- claim --------------------------------------------------------------------------------------------------------

def default_worker_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}"


def _due_q(now: datetime) -> Q:
    return Q(status=Status.PENDING, next_attempt_at__lte=now)


def _connected_orgs() -> QuerySet:
    """Organizations whose work may be claimed: connected and not paused by an operator (services/pause.py)."""
    return QboConnection.objects.filter(status=QboConnection.Status.CONNECTED, paused_at__isnull=True).values(
        "organization_id")


def due_organizations(organization_id: int | None = None) -> list[tuple[int, int]]:
    """``[(organization_id, best priority)]`` of organizations with due items and a usable connection."""
    qs = QueueItem.objects.filter(_due_q(timezone.now()), organization_id__in=_connected_orgs())
    if organization_id is not None:
        qs = qs.filter(organization_id=organization_id)
    return list(qs.values("organization_id").annotate(best=Min("priority")).order_by()
                .values_list("organization_id", "best"))


def has_due_work(organization_id: int | None = None) -> bool:
    qs = QueueItem.objects.filter(_due_q(timezone.now()), organization_id__in=_connected_orgs())
    if organization_id is not None:
        qs = qs.filter(organization_id=organization_id)
    return qs.exists()


def next_due_at(organization_id: int | None = None) -> datetime | None:
    """When the next pending first attempt of a usable connection is due (None when there is none). Retries are not
    counted: their backoff is deliberate, and a drain waiting on them would hold a worker through an outage."""
    qs = QueueItem.objects.filter(status=Status.PENDING, attempts=0, organization_id__in=_connected_orgs())
    if organization_id is not None:
        qs = qs.filter(organization_id=organization_id)
    return qs.aggregate(due=Min("next_attempt_at"))["due"]


def _pick_organization(candidates: list[tuple[int, int]]) -> tuple[int, datetime | None]:
    """Real-time work first, then the organization served least recently (never served first, ties at random).
    Returns the organization and its "last served" stamp as read (``_take_turn`` compares against it)."""
    stamps = dict(QboConnection.objects.filter(organization_id__in=[org for org, _ in candidates])
                  .values_list("organization_id", "last_served_at"))
    oldest = datetime.min.replace(tzinfo=UTC)
    org = min(candidates, key=lambda c: (c[1], stamps.get(c[0]) or oldest, random.random()))[0]
    return org, stamps.get(org)


def _take_turn(organization_id: int, seen: datetime | None) -> bool:
    """Stamp the organization as served now, unless another worker stamped it since we read ``seen`` (then it is
    that worker's turn and we pick again). The stamp is a database column, so the rotation is one for every worker
    process on every machine."""
    stamp = Q(last_served_at__isnull=True) if seen is None else Q(last_served_at=seen)
    return bool(QboConnection.objects.filter(stamp, organization_id=organization_id)
                .update(last_served_at=timezone.now()))


def claim_chunk(worker_id: str | None = None, *, limit: int | None = None, lease_seconds: float | None = None,
                organization_id: int | None = None) -> tuple[int | None, list[QueueItem]]:
    """Lease up to ``limit`` due items of ONE organization, chosen fairly; ``(None, [])`` when nothing is due.

    Expired leases (crashed workers) are reaped first, so their items are claimable again. Organizations whose
    connection is not ``connected`` are skipped: their items wait, untouched.
    """
    limit = limit or qbo_settings.CHUNK_SIZE
    lease_seconds = lease_seconds or qbo_settings.LEASE_SECONDS
    owner = f"{(worker_id or default_worker_id())[:48]}/{uuid.uuid4().hex[:12]}"
    reap_expired_leases()
    for attempt in range(_PICK_ATTEMPTS):
        # Another worker may take our pick's turn, or the last due items of the organization: pick again.
        candidates = due_organizations(organization_id)
        if not candidates:
            return None, []
        org, seen = _pick_organization(candidates)
        if not _take_turn(org, seen) and attempt < _PICK_ATTEMPTS - 1:
            continue
        items = _claim_org(org, owner, limit, lease_seconds)
        if items:
            return org, items
    return None, []


def _claim_org(organization_id: int, owner: str, limit: int, lease_seconds: float) -> list[QueueItem]:
    now = timezone.now()
    lease_until = now + timedelta(seconds=lease_seconds)
    due = QueueItem.objects.filter(_due_q(now), organization_id=organization_id).order_by(
        "priority", "next_attempt_at", "pk")
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            ids = list(due.select_for_update(skip_locked=True).values_list("pk", flat=True)[:limit])
        else:
            ids = list(due.values_list("pk", flat=True)[:limit])
        if not ids:
            return []
        # The conditional UPDATE is the claim: a row another worker took meanwhile is no longer pending.
        QueueItem.objects.filter(pk__in=ids, status=Status.PENDING).update(
            status=Status.PROCESSING, lease_owner=owner, lease_expires_at=lease_until, updated_at=now)
        items = list(QueueItem.objects.filter(pk__in=ids, lease_owner=owner, status=Status.PROCESSING)
                     .order_by("priority", "next_attempt_at", "pk"))
        job_ids = {item.job_id for item in items if item.job_id}
        if job_ids:
            SyncJob.objects.filter(pk__in=job_ids, state=SyncJob.State.PENDING).update(
                state=SyncJob.State.RUNNING, started_at=now, updated_at=now)
    return items


# --- outcomes -----------------------------------------------------------------------------------------------------

def backoff_seconds(attempts: int, retry_after: float | None = None) -> float:
    """Delay before attempt ``attempts + 1``: ``retry_after`` when QBO said so, else jittered exponential backoff
    (RETRY_BASE_SECONDS · 2^attempts, ±20 %, capped by RETRY_MAX_SECONDS)."""
    cap = float(qbo_settings.RETRY_MAX_SECONDS)
    if retry_after is not None:
        return min(max(float(retry_after), 0.0), cap)
    base = float(qbo_settings.RETRY_BASE_SECONDS) * (2 ** min(attempts, 30))
    return min(base * random.uniform(0.8, 1.2), cap)


def apply_outcomes(items: Sequence[QueueItem], outcomes: dict[int, Outcome]) -> dict[str, int]:
    """Write the outcomes of a claimed chunk in one transaction; returns counts per result.

    completed -> ``completed`` (``completed_at``); retry -> back to ``pending`` with one attempt spent and a
    backoff, ``dead`` after MAX_ATTEMPTS (with its last error); failed -> ``failed`` at once; wait -> ``pending``
    later, no attempt spent. Only rows still leased by the claim that produced ``items`` are written; an item
    without an outcome is retried (never silently dropped). Finished jobs are closed.
    """
    if not items:
        return {}
    for attempt in range(_CONFLICT_RETRIES):
        try:
            with transaction.atomic():
                return _apply(items, outcomes)
        except IntegrityError:  # a pending sibling appeared between our check and our write (PostgreSQL only)
            if attempt == _CONFLICT_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def _apply(items: Sequence[QueueItem], outcomes: dict[int, Outcome]) -> dict[str, int]:
    now = timezone.now()
    counts: dict[str, int] = defaultdict(int)
    by_owner: dict[str, list[int]] = defaultdict(list)
    for item in items:
        by_owner[item.lease_owner].append(item.pk)
    leased_q = Q()
    for owner, pks in by_owner.items():
        leased_q |= Q(lease_owner=owner, pk__in=pks)
    rows = list(QueueItem.objects.select_for_update().filter(leased_q, status=Status.PROCESSING).only(
        "pk", "organization_id", "job_id", "entity_type", "object_id", "operation", "attempts", "next_attempt_at",
        "last_error", "error_code", "completed_at", "lease_owner"))
    counts["lost"] = len(items) - len(rows)
    if counts["lost"]:
        logger.warning("%d queue item(s) lost their lease before their outcome was written", counts["lost"])
    max_attempts = int(qbo_settings.MAX_ATTEMPTS)
    back_to_pending: list[QueueItem] = []
    for row in rows:
        outcome = outcomes.get(row.pk) or Outcome.retry("the processor returned no outcome for this item",
                                                        code="no_outcome")
        row.lease_owner, row.lease_expires_at, row.updated_at = "", None, now
        if outcome.result == Result.COMPLETED:
            row.status, row.completed_at, row.last_error, row.error_code = Status.COMPLETED, now, "", ""
            counts["completed"] += 1
        elif outcome.result == Result.FAILED:
            row.status, row.last_error, row.error_code = Status.FAILED, outcome.message, outcome.code[:32]
            counts["failed"] += 1
        elif outcome.result == Result.WAIT:
            row.status, row.last_error, row.error_code = Status.PENDING, outcome.message, outcome.code[:32] or "wait"
            row.next_attempt_at = now + timedelta(seconds=outcome.retry_after or WAIT_SECONDS)
            back_to_pending.append(row)
            counts["waiting"] += 1
        else:  # RETRY
            row.attempts += 1
            row.last_error, row.error_code = outcome.message, outcome.code[:32]
            if row.attempts >= max_attempts:
                row.status = Status.DEAD
                counts["dead"] += 1
            else:
                row.status = Status.PENDING
                row.next_attempt_at = now + timedelta(seconds=backoff_seconds(row.attempts - 1, outcome.retry_after))
                back_to_pending.append(row)
                counts["retried"] += 1
    superseded = _superseded(back_to_pending)
    for row in rows:
        if row.pk in superseded:
            row.status = Status.CANCELLED
            row.last_error = f"Superseded by a newer pending item. {row.last_error}".strip()[:2000]
            counts["superseded"] += 1
    # The common case, completed items, is one plain UPDATE per code ("" or e.g. "coalesced"); bulk_update's CASE
    # expressions cost ~5 ms a row.
    done_by_code: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        if row.status == Status.COMPLETED:
            given = outcomes.get(row.pk)
            done_by_code[given.code[:32] if given is not None else ""].append(row.pk)
    for code, done in done_by_code.items():
        for start in range(0, len(done), 500):
            QueueItem.objects.filter(pk__in=done[start:start + 500]).update(
                status=Status.COMPLETED, completed_at=now, last_error="", error_code=code, lease_owner="",
                lease_expires_at=None, updated_at=now)
    others = [row for row in rows if row.status != Status.COMPLETED]
    if others:
        QueueItem.objects.bulk_update(others, ["status", "attempts", "next_attempt_at", "lease_owner",
                                               "lease_expires_at", "last_error", "error_code", "completed_at",
                                               "updated_at"], batch_size=200)
    close_finished_jobs({row.job_id for row in rows if row.job_id})
    return dict(counts)


def _superseded(rows: Sequence[QueueItem]) -> set[int]:
    """Real-time rows about to go back to pending that already have a pending sibling (the constraint allows one)."""
    realtime = [row for row in rows if row.job_id is None]
    if not realtime:
        return set()
    keys = set(QueueItem.objects.filter(
        status=Status.PENDING, job__isnull=True, organization_id__in={r.organization_id for r in realtime},
        object_id__in={r.object_id for r in realtime},
    ).exclude(pk__in=[r.pk for r in realtime]).values_list("organization_id", "entity_type", "object_id", "operation"))
    return {r.pk for r in realtime if (r.organization_id, r.entity_type, r.object_id, r.operation) in keys}


# --- jobs ---------------------------------------------------------------------------------------------------------

def _finish(job: SyncJob, state: str) -> None:
    now = timezone.now()
    SyncJob.objects.filter(pk=job.pk).update(state=state, finished_at=now, updated_at=now)
    job.state, job.finished_at = state, now


def close_finished_jobs(job_ids: Iterable[int]) -> None:
    """Close the jobs among ``job_ids`` that have no pending or processing item left (two cheap queries, and a third
    only when some job finished): ``completed``, or ``failed`` (completed with failures) when an item failed or died."""
    job_ids = set(job_ids)
    if not job_ids:
        return
    with transaction.atomic():
        # Two workers finishing a job's last items at once would each still see the other's items as processing
        # (READ COMMITTED) and neither would close it. Locking the job rows (in id order) makes the later one wait
        # and then count with the earlier one's items committed.
        list(SyncJob.objects.select_for_update().filter(pk__in=sorted(job_ids)).order_by("pk")
             .values_list("pk", flat=True))
        _close_finished(job_ids)


def _close_finished(job_ids: set[int]) -> None:
    open_ids = set(QueueItem.objects.filter(job_id__in=job_ids, status__in=[Status.PENDING, Status.PROCESSING])
                   .values_list("job_id", flat=True).distinct())
    done = job_ids - open_ids
    if not done:
        return
    with_failures = set(QueueItem.objects.filter(job_id__in=done, status__in=[Status.FAILED, Status.DEAD])
                        .values_list("job_id", flat=True).distinct())
    now = timezone.now()
    active = [SyncJob.State.PENDING, SyncJob.State.RUNNING]
    if done - with_failures:
        SyncJob.objects.filter(pk__in=done - with_failures, state__in=active).update(
            state=SyncJob.State.COMPLETED, finished_at=now, updated_at=now)
    if with_failures:
        SyncJob.objects.filter(pk__in=with_failures, state__in=active).update(
            state=SyncJob.State.FAILED, finished_at=now, updated_at=now)


# --- retry, cancel, reap ------------------------------------------------------------------------------------------

def retry_items(queryset: QuerySet, include_dead: bool = False) -> int:
    """Put failed (and, with ``include_dead``, dead) items back in the queue, due now with fresh attempts.

    A real-time item whose object already has a newer pending item is left as it is (the newer one will run).
    Their jobs are reopened. Returns how many items were requeued.
    """
    statuses = [Status.FAILED, Status.DEAD] if include_dead else [Status.FAILED]
    now = timezone.now()
    with transaction.atomic():
        # Lock the items only: PostgreSQL refuses FOR UPDATE over the nullable join an admin changelist adds.
        rows = list(queryset.filter(status__in=statuses).select_related(None).select_for_update(of=("self",)))
        superseded = _superseded(rows)
        # Two failed real-time items of one object: requeue only the newest.
        newest: dict[tuple, QueueItem] = {}
        for r in rows:
            if r.pk in superseded:
                continue
            key = (r.organization_id, r.entity_type, r.object_id, r.operation) if r.job_id is None else ("job", r.pk)
            if key not in newest or r.pk > newest[key].pk:
                newest[key] = r
        ids = [r.pk for r in newest.values()]
        count = QueueItem.objects.filter(pk__in=ids).update(
            status=Status.PENDING, attempts=0, next_attempt_at=now, lease_owner="", lease_expires_at=None,
            updated_at=now)
        job_ids = {r.job_id for r in newest.values() if r.job_id}
        if job_ids:
            SyncJob.objects.filter(pk__in=job_ids).exclude(state=SyncJob.State.CANCELLED).update(
                state=SyncJob.State.RUNNING, finished_at=None, updated_at=now)
    if count:
        _kick_on_commit()
    return count


def cancel_items(queryset: QuerySet) -> int:
    """Cancel the pending items of ``queryset`` (items being processed finish their chunk). Returns the count."""
    with transaction.atomic():
        ids = list(queryset.filter(status=Status.PENDING).values_list("pk", flat=True))
        job_ids = set(QueueItem.objects.filter(pk__in=ids, job__isnull=False).values_list("job_id", flat=True))
        now = timezone.now()
        count = QueueItem.objects.filter(pk__in=ids, status=Status.PENDING).update(
            status=Status.CANCELLED, updated_at=now, last_error="Cancelled.")
        close_finished_jobs(job_ids)
    return count


def cancel_job(job: SyncJob) -> int:
    """Cancel a job: its pending items are cancelled and the job is ``cancelled`` (items already in a worker's chunk
    finish, their outcome is still recorded). Returns how many items were cancelled."""
    with transaction.atomic():
        now = timezone.now()
        count = QueueItem.objects.filter(job=job, status=Status.PENDING).update(
            status=Status.CANCELLED, updated_at=now, last_error="Cancelled with its job.")
        if not job.is_finished:
            _finish(job, SyncJob.State.CANCELLED)
    return count


def reap_expired_leases() -> int:
    """Put items whose lease ran out (their worker crashed or hung) back in the queue.

    The lost run counts as an attempt, so an item that kills its worker every time ends ``dead``, visible, instead
    of looping; a real-time item with a newer pending sibling is superseded. Returns how many items were reaped.
    """
    now = timezone.now()
    expired = QueueItem.objects.filter(status=Status.PROCESSING, lease_expires_at__lt=now)
    sibling = QueueItem.objects.filter(
        status=Status.PENDING, job__isnull=True, organization_id=OuterRef("organization_id"),
        entity_type=OuterRef("entity_type"), object_id=OuterRef("object_id"), operation=OuterRef("operation"))
    max_attempts = int(qbo_settings.MAX_ATTEMPTS)
    try:
        superseded, reaped = _reap(expired, sibling, max_attempts, now)
    except IntegrityError:  # a pending sibling appeared meanwhile (PostgreSQL): the next claim reaps again
        logger.info("Reaping expired leases raced with an enqueue; will retry", exc_info=True)
        return 0
    if reaped or superseded:
        logger.warning("Reaped %d queue item(s) with an expired lease (%d superseded)", reaped, superseded)
    return reaped + superseded


def _reap(expired: QuerySet, sibling: QuerySet, max_attempts: int, now: datetime) -> tuple[int, int]:
    with transaction.atomic():
        superseded = expired.filter(Exists(sibling), job__isnull=True).update(
            status=Status.CANCELLED, lease_owner="", lease_expires_at=None, updated_at=now,
            last_error="Lease expired; superseded by a newer pending item.")
        job_ids = set(expired.filter(job__isnull=False).values_list("job_id", flat=True).distinct())
        reaped = expired.update(
            status=Case(When(attempts__gte=max_attempts - 1, then=Value(Status.DEAD)), default=Value(Status.PENDING)),
            attempts=F("attempts") + 1, lease_owner="", lease_expires_at=None, next_attempt_at=now, updated_at=now,
            last_error="The worker's lease expired before it recorded an outcome (worker lost or too slow).",
            error_code="lease_expired",
        )
        if job_ids:
            close_finished_jobs(job_ids)
    return superseded, reaped


# --- helpers ------------------------------------------------------------------------------------------------------

def _kick_on_commit() -> None:
    from qbo_sync.services import wakeup

    wakeup.kick_on_commit()


__all__ = [
    "apply_outcomes", "backoff_seconds", "cancel_items", "cancel_job", "claim_chunk", "close_finished_jobs",
    "create_job", "default_worker_id", "due_organizations", "enqueue", "has_due_work", "next_due_at",
    "reap_expired_leases",
    "retry_items", "start_pull", "start_repull",
]
