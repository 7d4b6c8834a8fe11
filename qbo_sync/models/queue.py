from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from qbo_sync.models.base import entity_type_field, organization_fk


class SyncJob(models.Model):
    """One bulk operation a person or a schedule started ("push these 500 invoices", "import everything").

    Its progress is derived from its queue items (one aggregate query), never stored twice.
    """

    class Kind(models.TextChoices):
        PUSH = "push", "Push to QuickBooks"
        PULL = "pull", "Pull from QuickBooks"
        IMPORT = "import", "First import from QuickBooks"
        SYNC = "sync", "Full sync cycle"
        RECONCILE = "reconcile", "Reconciliation"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    organization = organization_fk()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    entity_type = entity_type_field(blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    total = models.PositiveIntegerField(default=0)
    description = models.CharField(max_length=255, blank=True)
    options = models.JSONField(default=dict, blank=True)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "state", "-created_at"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_kind_display()} {self.entity_type}".strip()

    @property
    def is_finished(self) -> bool:
        return self.state in (self.State.COMPLETED, self.State.FAILED, self.State.CANCELLED)


def new_idempotency_key() -> str:
    # 36 characters: within QBO's requestid limit for batch calls.
    return str(uuid.uuid4())


class QueueItem(models.Model):
    """One unit of sync work. These rows, not django-q2's tasks, are the source of truth: a lost task loses nothing.

    A worker claims a chunk by setting ``lease_owner``/``lease_expires_at``; a crashed worker's lease runs out and
    the items are claimed again. ``idempotency_key`` is fixed at enqueue and sent as QBO's ``requestid``, so a repeat
    after a lost response returns the original result instead of writing twice.
    """

    class Operation(models.TextChoices):
        CREATE = "create", "Create"
        UPDATE = "update", "Update"
        PUSH = "push", "Push (create or update)"
        VOID = "void", "Void"
        PULL = "pull", "Pull"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        DEAD = "dead", "Dead"
        CANCELLED = "cancelled", "Cancelled"

    class Priority(models.IntegerChoices):
        REALTIME = 0, "Real-time"
        BULK = 10, "Bulk"

    organization = organization_fk()
    job = models.ForeignKey(SyncJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="items")
    entity_type = entity_type_field()
    object_id = models.CharField(max_length=64, blank=True, help_text="The host row's primary key.")
    qbo_id = models.CharField(max_length=32, blank=True, help_text="For pulls: the QuickBooks id.")
    operation = models.CharField(max_length=16, choices=Operation.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.REALTIME)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    idempotency_key = models.CharField(max_length=50, unique=True, default=new_idempotency_key)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # Ten saves of one customer before a worker gets to it are one push.
            models.UniqueConstraint(
                fields=["organization", "entity_type", "object_id", "operation"],
                condition=models.Q(status="pending", job__isnull=True),
                name="uniq_pending_realtime_item",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "priority", "next_attempt_at"], name="qbo_queue_claim_idx"),
            models.Index(fields=["organization", "status"], name="qbo_queue_org_status_idx"),
            models.Index(fields=["job", "status"], name="qbo_queue_job_status_idx"),
            models.Index(fields=["status", "lease_expires_at"], name="qbo_queue_lease_idx"),
            models.Index(fields=["entity_type", "object_id"], name="qbo_queue_object_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.operation} {self.entity_type} {self.object_id or self.qbo_id} ({self.status})"


class DrainSignal(models.Model):
    """What every process must agree on about drains, in one row (``name="drain"``), so that a web process, a worker
    and another cluster see the same thing (a per-process cache would not; docs/operations.md):

    - ``queued_at``: a drain task is in the broker and has not started yet. ``tasks.kick`` queues another only when
      this is empty or stale; ``tasks.drain_task`` clears it as it starts.
    - ``waiting_until`` / ``waiter``: a running drain found nothing due and is waiting for the next due item (a save's
      push delay). At most one drain waits; another that finds nothing due leaves the work to it.
    """

    name = models.CharField(max_length=32, primary_key=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    waiting_until = models.DateTimeField(null=True, blank=True)
    waiter = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name = "drain signal"

    def __str__(self) -> str:
        return f"{self.name}: queued {self.queued_at}, waiting until {self.waiting_until}"
