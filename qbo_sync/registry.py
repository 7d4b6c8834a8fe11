"""The entity registry: every question "which entities ..." answered from the registered mapping modules' SPECs.

An entity is registered by adding its mapping module to ``qbo_sync.mapping.MAPPERS``; its ``SPEC``
(:class:`~qbo_sync.mapping.base.EntitySpec`) says which way it syncs, whether it is a name list or a transaction,
what it depends on, what its pull reads and what a webhook triggers. Services, admin, API, CLI, webhooks and tasks
ask here instead of keeping their own tuples of entity names (``tests/unit/test_registry.py`` fails on any literal
list of entity names outside the registry and the mapping modules). Model columns that hold an entity name are
checked against :func:`names` (:func:`validate_entity_name`, system check ``qbo_sync.E018``), not by ``choices``,
so registering an entity needs no migration.

Pure: reads no settings and touches no ORM (the host's adapters live in :mod:`qbo_sync.adapters`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError

from qbo_sync.mapping import MAPPERS, Mapper, get_mapper
from qbo_sync.mapping.base import Direction, EntitySpec

__all__ = [
    "Mapper",
    "get_mapper",
    "has_adapter",
    "is_registered",
    "lookup",
    "name_lists",
    "names",
    "problems",
    "pull_for",
    "pullable",
    "push_order",
    "pushable",
    "qbo_names",
    "schedules",
    "spec",
    "specs",
    "targeted_pullable",
    "two_way",
    "validate_entity_name",
    "webhook_routes",
    "with_adapters",
]


def specs() -> list[EntitySpec]:
    """Every registered entity's spec, in dependency order (an entity after those it depends on; ties keep the
    registration order)."""
    registered = [mapper.SPEC for mapper in MAPPERS.values()]
    by_name = {s.qbo_name: s for s in registered}
    ordered: list[EntitySpec] = []
    placed: set[str] = set()

    def place(s: EntitySpec, path: tuple[str, ...]) -> None:
        if s.qbo_name in placed:
            return
        if s.qbo_name in path:
            raise ValueError(f"entity dependencies form a circle: {' -> '.join((*path, s.qbo_name))}")
        for dep in s.depends_on:
            if dep in by_name:
                place(by_name[dep], (*path, s.qbo_name))
        placed.add(s.qbo_name)
        ordered.append(s)

    for s in registered:
        place(s, ())
    return ordered


def _names(predicate: Any = None) -> tuple[str, ...]:
    return tuple(s.qbo_name for s in specs() if predicate is None or predicate(s))


def names() -> tuple[str, ...]:
    """Every registered entity name (the values entity columns accept), in dependency order."""
    return _names()


def is_registered(name: str) -> bool:
    return name in MAPPERS


def spec(name: str) -> EntitySpec:
    """The spec of a registered entity; ``KeyError`` for a name that never syncs."""
    return get_mapper(name).SPEC


def pushable() -> tuple[str, ...]:
    """Entities whose host rows are sent to QBO, in push order (dependencies first)."""
    return _names(lambda s: s.pushes)


#: A chunk sends its pushes in this order (customers and items before the invoices that name them).
push_order = pushable


def pullable() -> tuple[str, ...]:
    """Entities that can be pulled from QBO, in import order (dependencies first)."""
    return _names(lambda s: s.pulls)


def two_way() -> tuple[str, ...]:
    """Entities synced both ways (a sync cycle pulls them, then pushes what the host changed)."""
    return _names(lambda s: s.direction is Direction.BOTH)


def name_lists() -> tuple[str, ...]:
    """Registered QBO name lists (unique by name, made inactive rather than deleted): queries must ask for inactive
    records too, and pulls link them by natural key."""
    return _names(lambda s: s.name_list)


def with_adapters() -> tuple[str, ...]:
    """Entities with host rows of their own: the keys ``QBO_SYNC['ENTITY_ADAPTERS']`` accepts."""
    return _names(lambda s: s.host_entity == s.qbo_name)


def has_adapter(name: str) -> bool:
    return name in with_adapters()


def targeted_pullable() -> tuple[str, ...]:
    """Entities whose selected host rows can be re-read from QBO one by one (admin "Pull selected", API)."""
    return _names(lambda s: s.pulls and s.host_entity == s.qbo_name)


def webhook_routes() -> dict[str, str]:
    """QBO entity name in a webhook event -> the registered entity whose pull reads that change."""
    routes: dict[str, str] = {}
    for s in specs():
        if s.pulls:
            for qbo_name in s.triggered_by:
                routes.setdefault(qbo_name, s.qbo_name)
    return routes


def pull_for(qbo_name: str) -> str | None:
    """The registered entity whose pull reads a change of ``qbo_name`` (``"Invoice"`` -> ``"Payment"``), or
    ``None`` for an entity qbo_sync does not read (Vendor, Account ...)."""
    return webhook_routes().get(qbo_name)


def qbo_names() -> tuple[str, ...]:
    """Every QBO entity name qbo_sync knows: the registered ones and those their pulls read or react to."""
    seen: dict[str, None] = {}
    for s in specs():
        for name in (s.qbo_name, *s.reads, *s.triggered_by):
            seen.setdefault(name, None)
    return tuple(seen)


def schedules() -> dict[str, str]:
    """Nightly schedule name (the entity's plural: ``"customers"``) -> the pullable entity it pulls."""
    return {s.plural: s.qbo_name for s in specs() if s.pulls}


def lookup(text: Any, among: Iterable[str] | None = None) -> str | None:
    """The registered entity a person named (case-insensitive, singular or plural: ``"invoices"`` ->
    ``"Invoice"``), optionally only ``among`` some; ``None`` when it names none of them."""
    if not isinstance(text, str):
        return None
    key = text.strip().lower()
    for name in names() if among is None else among:
        if key in (name.lower(), spec(name).plural.lower()):
            return name
    return None


def validate_entity_name(value: str) -> None:
    """Model field validator: an entity column holds a registered entity name (or is blank where allowed)."""
    if value and not is_registered(value):
        raise ValidationError(f"{value!r} is not a synced entity (known: {', '.join(names())}).",
                              code="invalid_choice", params={"value": value})


def problems(max_length: int | None = None) -> list[str]:
    """What is wrong with the registered specs (the system check reports each): unknown dependencies, circles, two
    entities claiming one webhook event, names longer than the entity columns."""
    found: list[str] = []
    registered = [mapper.SPEC for mapper in MAPPERS.values()]
    known = {s.qbo_name for s in registered}
    for key, mapper in MAPPERS.items():
        if mapper.SPEC.qbo_name != key:
            found.append(f"{key!r} is registered with the spec of {mapper.SPEC.qbo_name!r}")
    claimed: dict[str, str] = {}
    for s in registered:
        for dep in s.depends_on:
            if dep not in known:
                found.append(f"{s.qbo_name} depends on {dep!r}, which is not registered")
        if s.host_entity not in known:
            found.append(f"{s.qbo_name} is written onto {s.host_entity!r}, which is not registered")
        elif s.host_entity != s.qbo_name and not spec(s.host_entity).host_entity == s.host_entity:
            found.append(f"{s.qbo_name} is written onto {s.host_entity}, which has no host rows of its own")
        if s.pulls:
            for qbo_name in s.triggered_by:
                if claimed.setdefault(qbo_name, s.qbo_name) != s.qbo_name:
                    found.append(f"a {qbo_name} webhook event would trigger both {claimed[qbo_name]} and "
                                 f"{s.qbo_name}")
        if max_length is not None and len(s.qbo_name) > max_length:
            found.append(f"{s.qbo_name} is longer than the entity columns ({max_length} characters)")
    try:
        specs()
    except ValueError as exc:
        found.append(str(exc))
    return found
