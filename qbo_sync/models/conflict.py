from __future__ import annotations

from django.conf import settings
from django.db import models

from qbo_sync.models.base import entity_type_field, organization_fk
from qbo_sync.models.mapping import EntityMapping


class Conflict(models.Model):
    """A field changed on both sides since the last sync. Always recorded, whether a policy resolved it or not."""

    class State(models.TextChoices):
        AUTO_RESOLVED = "auto_resolved", "Resolved by policy"
        OPEN = "open", "Waiting for a person"
        RESOLVED = "resolved", "Resolved by a person"

    class Winner(models.TextChoices):
        HOST = "host", "Host"
        QBO = "qbo", "QuickBooks"

    organization = organization_fk()
    mapping = models.ForeignKey(EntityMapping, on_delete=models.CASCADE, related_name="conflicts")
    entity_type = entity_type_field()
    field = models.CharField(max_length=64)
    base_value = models.JSONField(null=True, blank=True)
    host_value = models.JSONField(null=True, blank=True)
    qbo_value = models.JSONField(null=True, blank=True)
    host_updated_at = models.DateTimeField(null=True, blank=True)
    qbo_updated_at = models.DateTimeField(null=True, blank=True)
    rule = models.CharField(max_length=32, help_text="The policy applied, e.g. newest_wins, qbo_owns, critical.")
    winner = models.CharField(max_length=8, choices=Winner.choices, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    resolved_value = models.JSONField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "state"])]

    def __str__(self) -> str:
        return f"{self.entity_type} {self.mapping.object_id}.{self.field} ({self.get_state_display()})"
