"""Pure mapping between host canonical values and QuickBooks Online payloads, one module per entity.

Each entity module (``customers``, ``items``, ``invoices``, ``payments``) holds that entity's ``SPEC``
(fields, direction, conflict policy), ``to_qbo``, ``from_qbo`` and ``qbo_updated_at``; :mod:`.merge` is the
three-way merge. This package does no I/O, touches no ORM and reads no settings. Sales orders never sync: they
have no module.
"""

from __future__ import annotations

from types import ModuleType

from . import customers, invoices, items, payments
from .base import Direction, EntitySpec, MappingError, Policy
from .merge import FieldConflict, MergeResult, merge

__all__ = [
    "MAPPERS",
    "Direction",
    "EntitySpec",
    "FieldConflict",
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

#: QBO entity name -> its mapping module. There is deliberately no "SalesOrder".
MAPPERS: dict[str, ModuleType] = {
    "Customer": customers,
    "Item": items,
    "Invoice": invoices,
    "Payment": payments,
}


def get_mapper(qbo_name: str) -> ModuleType:
    """The mapping module for a QBO entity name; ``KeyError`` for an entity that never syncs."""
    try:
        return MAPPERS[qbo_name]
    except KeyError:
        raise KeyError(f"{qbo_name!r} does not sync (known: {sorted(MAPPERS)})") from None
