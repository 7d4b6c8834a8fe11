"""Resolving conflicts a person was asked about (critical fields), or overriding one a policy settled."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from qbo_sync.adapters import get_adapter
from qbo_sync.mapping.base import jsonable
from qbo_sync.models import Conflict, EntityMapping, QboConnection, QueueItem
from qbo_sync.services import mappings as maps
from qbo_sync.services import queue
from qbo_sync.services.echo import applying_qbo_changes
from qbo_sync.services.jobs import QboInputError

KEEP_CHOICES = ("host", "qbo", "value")


class QboValueError(QboInputError):
    """An edited value the host field refuses; ``messages`` are the field's own (nothing was written)."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages), "value")
        self.messages = messages


def clean_value(entity: str, name: str, value: Any) -> Any:
    """An edited value checked through the host field (see ``HostAdapter.clean_value``), or QboValueError."""
    try:
        return get_adapter(entity).clean_value(name, value)
    except ValidationError as exc:
        raise QboValueError([str(m) for m in exc.messages]) from None


def resolve_conflict(conflict: Conflict, keep: str, *, user: Any = None, value: Any = None) -> Conflict:
    """Settle a conflict: keep the app's (host) value, QuickBooks' value, or an edited ``value``; both sides get it.

    The value is written to the host row (without echo) and the snapshot's base for the field is set so that the
    next push sends it to QuickBooks when QuickBooks does not hold it already.
    """
    if keep not in KEEP_CHOICES:
        raise QboInputError(f"keep must be one of {', '.join(KEEP_CHOICES)}", "keep")
    if keep == "value" and value is None:
        raise QboInputError("an edited value is required with keep=value", "value")
    if keep == "value":
        # Checked before anything is written: a value the host field refuses changes nothing on either side.
        value = clean_value(conflict.entity_type, conflict.field, value)
    with transaction.atomic():
        conflict = Conflict.objects.select_for_update().select_related("mapping").get(pk=conflict.pk)
        if conflict.state == Conflict.State.RESOLVED:
            raise QboInputError(f"Conflict {conflict.pk} was already resolved.", "conflict")
        chosen = {"host": conflict.host_value, "qbo": conflict.qbo_value, "value": value}[keep]
        mapping: EntityMapping = conflict.mapping
        adapter = get_adapter(conflict.entity_type)
        obj = adapter.get_queryset(mapping.organization_id).filter(pk=mapping.object_id).first()
        if obj is None:
            raise QboInputError("The app's row of this conflict no longer exists.", "conflict")
        with applying_qbo_changes():
            adapter.apply_values(obj, {conflict.field: chosen})
        # The base becomes QuickBooks' value: if the chosen one differs, the push below sends it.
        still_open = Conflict.objects.filter(mapping=mapping, state=Conflict.State.OPEN).exclude(pk=conflict.pk)
        maps.record_resolution(mapping, conflict.field, conflict.qbo_value, still_open=still_open.exists())
        conflict.state = Conflict.State.RESOLVED
        conflict.winner = {"host": Conflict.Winner.HOST, "qbo": Conflict.Winner.QBO}.get(keep, "")
        conflict.resolved_value = jsonable(chosen)
        conflict.resolved_by = user if getattr(user, "is_authenticated", False) else None
        conflict.resolved_at = timezone.now()
        conflict.save()
        # Keeping QuickBooks' value needs a push too when the conflict's link belongs to a company the organization
        # has since left: the host changed, and the company connected now never saw that value.
        connected_realm = (QboConnection.objects.filter(organization_id=mapping.organization_id)
                           .values_list("realm_id", flat=True).first())
        if jsonable(chosen) != conflict.qbo_value or mapping.realm_id != connected_realm:
            queue.enqueue(mapping.organization_id, conflict.entity_type, [mapping.object_id],
                          QueueItem.Operation.PUSH)
    return conflict
