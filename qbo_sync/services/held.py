"""Which fields are held: the one rule push, pull, previews, reconcile and resolving all ask.

A field is *held* on a linked record while a conflict on it waits for a person (state ``open``; today only critical
fields open one). While held, the field is never sent to QuickBooks (push payloads leave it out; a nested group
such as the billing address carries QuickBooks' value for it), never written to the host by a pull, previews say
"held", and reconcile counts a difference in it as covered by the conflict. Resolving the conflict ends the hold
and puts the chosen value on both sides.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.utils import timezone

from qbo_sync.mapping.base import jsonable
from qbo_sync.models import Conflict, EntityMapping


def held_conflicts(mapping_ids: Iterable[int | None]) -> dict[int, dict[str, Conflict]]:
    """The open conflicts of these mappings, by mapping id then field (one query, however many mappings)."""
    ids = sorted({i for i in mapping_ids if i is not None})
    result: dict[int, dict[str, Conflict]] = defaultdict(dict)
    if not ids:
        return result
    for conflict in (Conflict.objects.filter(mapping_id__in=ids, state=Conflict.State.OPEN)
                     .only("pk", "mapping_id", "field", "host_value", "qbo_value").order_by("pk")):
        result[conflict.mapping_id].setdefault(conflict.field, conflict)
    return result


def held_fields(mapping: EntityMapping | None) -> dict[str, Any]:
    """The held fields of one linked record, each with QuickBooks' value as the sync last saw it."""
    if mapping is None or mapping.pk is None:
        return {}
    return {name: c.qbo_value for name, c in held_conflicts([mapping.pk]).get(mapping.pk, {}).items()}


def track_values(conflicts: dict[str, Conflict], host_values: dict[str, Any] | None = None,
                 qbo_values: dict[str, Any] | None = None) -> None:
    """Keep each open conflict showing what each side holds now (what "keep ..." then writes), though the field is
    neither sent nor pulled over while held. The push passes the host's values (a host edit of a held field), the
    pull both sides' (a new QuickBooks version, even one that now agrees with the host). One UPDATE per change."""
    now = timezone.now()
    for name, conflict in conflicts.items():
        updates: dict[str, Any] = {}
        if host_values is not None and name in host_values and jsonable(host_values[name]) != conflict.host_value:
            updates.update(host_value=jsonable(host_values[name]), host_updated_at=now)
        if qbo_values is not None and name in qbo_values and jsonable(qbo_values[name]) != conflict.qbo_value:
            updates.update(qbo_value=jsonable(qbo_values[name]), qbo_updated_at=now)
        if updates:
            Conflict.objects.filter(pk=conflict.pk, state=Conflict.State.OPEN).update(**updates)
            for field, value in updates.items():
                setattr(conflict, field, value)


def describe(conflicts: dict[str, Conflict]) -> str:
    """``email held by open conflict #12`` (``; `` between several), for previews and reports."""
    return "; ".join(f"{name} held by open conflict #{c.pk}" for name, c in sorted(conflicts.items()))
