from __future__ import annotations

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models

from qbo_sync.models.base import entity_type_field, organization_fk


class EntityMapping(models.Model):
    """A host row and its QuickBooks twin: the QBO id, its SyncToken and the values both sides agreed on last.

    ``snapshot`` is the base of the three-way merge: the canonical values as they were after the last successful
    sync. A side whose value differs from it has changed since.

    A link belongs to one QuickBooks company (``realm_id``) and to the organization that made it. Lookups key on
    organization + realm + entity + host row (or realm + entity + QBO id), so after a reconnect to a different
    company the old links stay for the record but are never used: that company's ids mean nothing in the new one.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SYNCED = "synced", "Synced"
        FAILED = "failed", "Failed"
        CONFLICT = "conflict", "Conflict"

    organization = organization_fk()
    entity_type = entity_type_field()
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.CharField(max_length=64)
    host_object = GenericForeignKey("content_type", "object_id")
    realm_id = models.CharField(max_length=32)
    qbo_id = models.CharField(max_length=32, null=True, blank=True)  # noqa: DJ001 (NULL = not created yet; unique when set)
    sync_token = models.CharField(max_length=16, blank=True)
    snapshot = models.JSONField(default=dict, blank=True)
    # The last QBO version recorded for this link, as QuickBooks sent it (written only by
    # ``qbo_sync.services.mappings``; shown read-only in the admin for whoever debugs a sync).
    qbo_payload = models.JSONField(default=dict, blank=True)
    qbo_updated_at = models.DateTimeField(null=True, blank=True)
    host_updated_at = models.DateTimeField(null=True, blank=True)
    last_pushed_at = models.DateTimeField(null=True, blank=True)
    last_pulled_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    last_error = models.TextField(blank=True)
    # The QBO record this one was merged into by the accountant while another host row is linked to that record:
    # nothing is sent for this row (``qbo_id`` names a deleted record) until a person settles it.
    merged_into = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["realm_id", "content_type", "object_id"], name="uniq_mapping_host_row"),
            models.UniqueConstraint(
                fields=["realm_id", "entity_type", "qbo_id"],
                condition=models.Q(qbo_id__isnull=False),
                name="uniq_mapping_qbo_object",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "entity_type", "state"]),
            models.Index(fields=["content_type", "object_id"], name="qbo_mapping_host_row_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.entity_type} {self.object_id} ↔ QBO {self.qbo_id or '(not created)'}"
