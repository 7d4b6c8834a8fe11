from __future__ import annotations

from typing import Any

from django.db import models

from qbo_sync.models.base import entity_type_field, organization_fk


class SyncLog(models.Model):
    """Append-only history of what the sync did. Rows are never updated (old ones may be purged)."""

    class Level(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        ERROR = "error", "Error"

    organization = organization_fk(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.INFO)
    event = models.CharField(max_length=64)
    entity_type = entity_type_field(blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    qbo_id = models.CharField(max_length=32, blank=True)
    job = models.ForeignKey("qbo_sync.SyncJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    message = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.event} {self.message[:60]}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValueError("SyncLog is append-only: rows are never updated.")
        super().save(*args, **kwargs)
