from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from qbo_sync.models.base import entity_type_field, organization_fk


class AuditEntry(models.Model):
    """Who changed what, through which surface, from which address. Append-only: rows are never updated.

    Written by ``qbo_sync.services.operations`` (people and the command line) and by the schedules and webhooks
    when they start work. A resolved conflict keeps the record, field, old and new value: "who overwrote this
    customer's email?" is one filter away.
    """

    class Action(models.TextChoices):
        CONNECT = "connect", "Connect"
        DISCONNECT = "disconnect", "Disconnect"
        START_PUSH = "start_push", "Start push"
        START_PULL = "start_pull", "Start pull"
        START_SYNC = "start_sync", "Start sync"
        START_IMPORT = "start_import", "Start import"
        CANCEL_JOB = "cancel_job", "Cancel job"
        RETRY_ITEMS = "retry_items", "Retry items"
        CANCEL_ITEMS = "cancel_items", "Cancel items"
        RESOLVE_CONFLICT = "resolve_conflict", "Resolve conflict"
        REPAIR = "repair", "Repair from reconciliation"
        PAUSE = "pause", "Pause sync"
        RESUME = "resume", "Resume sync"

    class Surface(models.TextChoices):
        ADMIN = "admin", "Admin"
        API = "api", "API"
        PAGE = "page", "Page"
        CLI = "cli", "Command line"
        SCHEDULE = "schedule", "Schedule"
        WEBHOOK = "webhook", "Webhook"

    organization = organization_fk(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    action = models.CharField(max_length=32, choices=Action.choices)
    surface = models.CharField(max_length=16, choices=Surface.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    actor = models.CharField(max_length=150, help_text="The user's name when it was done (kept if the user goes), "
                                                       "or the system actor.")
    address = models.CharField(max_length=45, blank=True, help_text="REMOTE_ADDR (or the configured proxy header).")
    job = models.ForeignKey("qbo_sync.SyncJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    entity_type = entity_type_field(blank=True)
    object_id = models.CharField(max_length=64, blank=True, help_text="The host row's id.")
    field = models.CharField(max_length=64, blank=True)
    old_value = models.JSONField(null=True, blank=True)
    new_value = models.JSONField(null=True, blank=True)
    summary = models.TextField(blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["organization", "-created_at"]),
                   models.Index(fields=["organization", "entity_type", "object_id"])]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.summary[:60]}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValueError("AuditEntry is append-only: rows are never updated.")
        super().save(*args, **kwargs)
