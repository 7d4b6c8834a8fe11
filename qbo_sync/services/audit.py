"""Recording who changed what (:class:`~qbo_sync.models.AuditEntry`): one call per change, from
``qbo_sync.services.operations`` and from the schedules and webhooks that start work on their own."""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from qbo_sync.models import AuditEntry
from qbo_sync.permissions import Actor

#: Values longer than this (as JSON) are kept shortened: an audit row states what happened, it is no backup.
MAX_VALUE_CHARS = 2000


def _jsonable(value: Any) -> Any:
    try:
        text = json.dumps(value, cls=DjangoJSONEncoder)
    except (TypeError, ValueError):
        text = json.dumps(str(value))
    text = text.replace("\\u0000", "")  # PostgreSQL's JSON refuses NUL
    if len(text) > MAX_VALUE_CHARS:
        return {"shortened": True, "start": json.loads(text)[:MAX_VALUE_CHARS] if text.startswith('"')
                else text[:MAX_VALUE_CHARS]}
    return json.loads(text)


def record(actor: Actor, action: str, organization: Any, *, job: Any = None, entity_type: str = "",
           object_id: Any = "", field: str = "", old: Any = None, new: Any = None, summary: str = "",
           detail: dict[str, Any] | None = None) -> AuditEntry:
    """Append one audit entry for a change ``actor`` made (call it once the change is done)."""
    user = actor.user if getattr(actor.user, "pk", None) else None
    return AuditEntry.objects.create(
        organization_id=getattr(organization, "pk", organization),
        action=action,
        surface=actor.surface,
        user=user,
        actor=actor.label[:150],
        address=actor.address[:45],
        job=job,
        entity_type=entity_type or "",
        object_id=str(object_id or "")[:64],
        field=(field or "")[:64],
        old_value=_jsonable(old) if old is not None else None,
        new_value=_jsonable(new) if new is not None else None,
        summary=summary,
        detail=_jsonable(detail or {}),
    )
