from __future__ import annotations

from django.db import models

from qbo_sync.models.base import entity_type_field, organization_fk


class PullCursor(models.Model):
    """How far an incremental pull got, per organization and entity. Advances only past what was committed."""

    organization = organization_fk()
    entity_type = entity_type_field()
    changed_since = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    running_since = models.DateTimeField(null=True, blank=True,
                                         help_text="Set while a pull runs: a second one attaches instead of starting.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "entity_type"], name="uniq_cursor")]

    def __str__(self) -> str:
        return f"{self.entity_type} since {self.changed_since}"
