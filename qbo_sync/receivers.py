"""Host changes become queue items: a saved customer or item is pushed soon; a voided sent invoice's void too.

Connected once in ``QboSyncConfig.ready()``. Enqueueing happens on commit (a rolled-back save sends nothing), and
nothing is enqueued while qbo_sync itself writes pulled values (no echo), for fixtures (``raw``), or for an
organization that has never connected to QuickBooks (its first push is the import/sync job).
"""

from __future__ import annotations

from typing import Any

from django.db import models, transaction
from django.db.models.signals import post_save

from qbo_sync.services.echo import is_applying_qbo_changes


def on_host_saved(sender: type[models.Model], instance: models.Model, created: bool = False, raw: bool = False,
                  **kwargs: Any) -> None:
    if raw or is_applying_qbo_changes():
        return
    from qbo_sync.adapters import InvoiceAdapterMixin, registry
    from qbo_sync.exceptions import QboConfigurationError

    try:
        adapter = registry.for_model(sender)
    except QboConfigurationError:
        return
    if adapter is None:
        return
    from qbo_sync.models import EntityMapping, QboConnection, QueueItem

    org_id = adapter.organization_id(instance)
    if not QboConnection.objects.filter(organization_id=org_id).exclude(status="disconnected").exists():
        return
    operation = None
    if adapter.entity == "Invoice" and isinstance(adapter, InvoiceAdapterMixin) and adapter.is_void(instance):
        sent = EntityMapping.objects.filter(content_type__model=instance._meta.model_name,
                                            content_type__app_label=instance._meta.app_label,
                                            object_id=str(instance.pk), qbo_id__isnull=False).exists()
        operation = QueueItem.Operation.VOID if sent else None
    elif adapter.auto_push(instance, created):
        operation = QueueItem.Operation.PUSH
    if operation is None:
        return
    object_id, entity = str(instance.pk), adapter.entity

    def enqueue_after_commit() -> None:
        from qbo_sync.conf import qbo_settings
        from qbo_sync.services.queue import enqueue

        enqueue(org_id, entity, [object_id], operation, delay=float(qbo_settings.PUSH_DELAY_SECONDS))

    transaction.on_commit(enqueue_after_commit)


def connect() -> None:
    post_save.connect(on_host_saved, dispatch_uid="qbo_sync.on_host_saved")
