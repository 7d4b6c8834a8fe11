from __future__ import annotations

from django.db import models


class WebhookEvent(models.Model):
    """One entity change QuickBooks told us about (legacy or CloudEvents format), after its signature verified.

    Unique per (realm, entity, id, operation, lastUpdated): a redelivered event is stored once. Entities carry no
    data; the change itself is read by the targeted pull the event triggers, so order does not matter.
    """

    realm_id = models.CharField(max_length=32)
    organization_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    entity = models.CharField(max_length=32)
    qbo_id = models.CharField(max_length=32)
    operation = models.CharField(max_length=32)
    last_updated = models.CharField(max_length=40, blank=True)
    event_id = models.CharField(max_length=128, blank=True)
    format = models.CharField(max_length=12, default="legacy")
    deleted_id = models.CharField(max_length=32, blank=True, help_text="A Merge: the merged-away record's id "
                                  "(``qbo_id`` is the survivor).")
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    job = models.ForeignKey("qbo_sync.SyncJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["realm_id", "entity", "qbo_id", "operation", "last_updated"],
                                    name="uniq_webhook_event"),
        ]

    def __str__(self) -> str:
        return f"{self.entity} {self.qbo_id} {self.operation} (realm {self.realm_id})"


class RefusalCount(models.Model):
    """How many requests an endpoint refused, per reason and minute: one row per (endpoint, reason, minute).

    A refused request (a webhook with a bad signature, an oversized or malformed body) costs one counter increment,
    not one row, so a flood of bad posts cannot fill the database. ``last_message`` and ``last_address`` keep the
    latest refusal's reason and origin for whoever investigates.
    """

    endpoint = models.CharField(max_length=32)
    reason = models.CharField(max_length=32)
    minute = models.DateTimeField(help_text="The start of the minute counted (UTC).")
    count = models.PositiveIntegerField(default=0)
    last_message = models.CharField(max_length=200, blank=True)
    last_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-minute", "endpoint", "reason"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "reason", "minute"], name="uniq_refusal_minute")]

    def __str__(self) -> str:
        return f"{self.endpoint} {self.reason} {self.minute:%Y-%m-%d %H:%M}: {self.count}"
