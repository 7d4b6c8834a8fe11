"""Pure mapping between host canonical values and QuickBooks Online payloads, one module per entity.

Each entity module (``customers``, ``items``, ``invoices``, ``payments``) holds that entity's ``SPEC``
(fields, direction, conflict policy), ``to_qbo``, ``from_qbo`` and ``qbo_updated_at``; :mod:`.merge` is the
three-way merge. This package does no I/O, touches no ORM and reads no settings. Sales orders never sync: they
have no module.

Registering an entity is adding its module to :data:`MAPPERS`; everything else qbo_sync knows about it (which
way it syncs, in what order, what its pull reads, what a webhook triggers) is derived from its ``SPEC`` by
:mod:`qbo_sync.registry`.
"""

from __future__ import annotations

from . import customers, invoices, items, payments
from .base import Direction, EntitySpec, Mapper, MappingError, Policy
from .merge import FieldConflict, MergeResult, merge

__all__ = [
    "MAPPERS",
    "Direction",
    "EntitySpec",
    "FieldConflict",
    "Mapper",
    "MappingError",
    "MergeResult",
    "Policy",
    "customers",
    "get_mapper",
    "invoices",
    "items",
    "merge",
    "payments",
]

#: The registered entities: QBO entity name -> its mapping module, in registration order (ties of the dependency
#: order keep it). There is deliberately no "SalesOrder".
_REGISTERED: tuple[Mapper, ...] = (customers, items, invoices, payments)
MAPPERS: dict[str, Mapper] = {mapper.SPEC.qbo_name: mapper for mapper in _REGISTERED}


def get_mapper(qbo_name: str) -> Mapper:
    """The mapping module for a QBO entity name; ``KeyError`` for an entity that never syncs."""
    try:
        return MAPPERS[qbo_name]
    except KeyError:
        raise KeyError(f"{qbo_name!r} does not sync (known: {sorted(MAPPERS)})") from None
