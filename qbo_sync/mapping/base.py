"""Shared vocabulary of the mapping layer: entity specs, policies, money, time and value normalisation.

Everything here is pure (no I/O, no ORM, no settings) so that the per-entity modules, the three-way merge and
their tests run without Django.

Conventions every entity module follows:

* The host side is a *canonical values dict* (plain Python: ``str``, ``bool``, ``Decimal``, ``date``). Host
  adapters convert their rows to and from these dicts; the mapping modules convert them to and from QBO JSON.
* Text fields are never ``None`` in what ``from_qbo`` returns: a field QBO omits comes back as ``""``.
* Money is ``Decimal`` end to end. QBO numbers arrive as ``int``, ``float`` or ``str``; they are parsed with
  ``Decimal(str(x))`` (never through float arithmetic). Payloads built by ``to_qbo`` hold ``Decimal`` values;
  the HTTP layer serialises them with :func:`jsonable` (or its own encoder) at the very edge.
* Time is timezone-aware. ``qbo_updated_at`` returns ``MetaData.LastUpdatedTime`` converted to UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Protocol

__all__ = [
    "CENT",
    "MONEY_TOLERANCE",
    "Direction",
    "DirectionError",
    "EntitySpec",
    "FieldKind",
    "Mapper",
    "MappingError",
    "NaturalKey",
    "Policy",
    "expand_groups",
    "fold_text",
    "format_date",
    "jsonable",
    "meta_updated_at",
    "money",
    "normalize",
    "parse_date",
    "parse_datetime",
    "parse_decimal",
    "ref",
    "ref_value",
    "trim_text",
    "unwrap",
    "values_equal",
]

CENT = Decimal("0.01")
#: Two amounts at most this far apart are "the same" (half a cent: what rounding half up can introduce).
MONEY_TOLERANCE = Decimal("0.005")


class MappingError(ValueError):
    """A value or payload cannot be mapped (missing context, malformed QBO data, wrong type)."""


class DirectionError(MappingError):
    """The operation goes against the entity's direction (e.g. pushing a payment, pulling an invoice)."""


class Direction(StrEnum):
    """Which way an entity travels."""

    BOTH = "both"
    PUSH = "push"  # host -> QBO only (invoices)
    PULL = "pull"  # QBO -> host only (payment state)


class Policy(StrEnum):
    """How a field's conflict (changed on both sides to different values) is resolved by the merge."""

    NEWEST_WINS = "newest_wins"  # last modified wins; a tie goes to QBO
    QBO_OWNS = "qbo_owns"  # QBO always wins; a host edit is overwritten and the overwrite recorded
    HOST_OWNS = "host_owns"  # the host wins whenever it changed the field


class FieldKind(StrEnum):
    """How values of a field are compared (see :func:`normalize`)."""

    TEXT = "text"  # None == "", surrounding whitespace ignored
    EMAIL = "email"  # TEXT, and case-insensitive (casefold)
    MONEY = "money"  # Decimal to 2 places; "12.5" == 12.50 == Decimal("12.500")
    DECIMAL = "decimal"  # exact Decimal compare (quantities, unit prices with more than 2 places)
    BOOL = "bool"
    DATE = "date"
    RAW = "raw"  # compared as is


def fold_text(value: Any) -> str:
    """A name or an address as compared for "the same record": trimmed, inner whitespace collapsed to one space,
    case-folded (``"  Amy's   BIRD "`` -> ``"amy's bird"``; ``"Straße"`` == ``"STRASSE"``)."""
    return " ".join(text(value).split()).casefold()


def trim_text(value: Any) -> str:
    """A code as compared for "the same record": trimmed, case and inner spacing kept (SKUs are codes)."""
    return text(value).strip()


@dataclass(frozen=True)
class NaturalKey:
    """One way a host row and a QBO record are recognised as the same before they are linked.

    ``field`` is the canonical field (the host side, after the adapter), ``qbo_property`` the QBO property it maps
    to (queryable when it is top-level), ``normalise`` turns either side's value into the compared form. An empty
    normalised value is no key: two customers without an email are not "the same" because of it.
    """

    field: str
    qbo_property: str
    normalise: Callable[[Any], str] = fold_text

    def of(self, values: Mapping[str, Any]) -> str:
        """The key of canonical values (a host row through its adapter, or ``from_qbo`` of a QBO record)."""
        return self.normalise(values.get(self.field))

    def of_qbo(self, payload: Mapping[str, Any]) -> str:
        """The key of a raw QBO record (``qbo_property`` may be dotted: ``PrimaryEmailAddr.Address``)."""
        value: Any = payload
        for part in self.qbo_property.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return self.normalise(value)

    def query_forms(self, value: Any) -> set[str]:
        """The literal values to ask QBO for, to find a record whose key equals ``value``'s: QBO compares strings
        case-insensitively but spacing exactly, so ask for the value as typed (trimmed) and whitespace-collapsed."""
        raw = text(value).strip()
        return {raw, " ".join(raw.split())} - {""}


@dataclass(frozen=True)
class EntitySpec:
    """Everything the sync engine needs to know about one entity, in one place.

    ``fields`` are the canonical fields that sync; ``policies`` overrides the default
    :attr:`Policy.NEWEST_WINS` per field; ``critical_fields`` is the default set of fields whose conflicts are
    held for a person (the services layer may pass a configured set instead); ``kinds`` says how each field's
    values are compared; ``groups`` names fields QBO stores in one nested object (a sparse update of any of
    them must carry all of them, see :func:`expand_groups`); ``natural_keys`` say how a host row and a QBO record
    are recognised as the same before they are linked (first the one QBO keeps unique, which push looks up
    before creating), the only definition push, pull, reconcile and previews use (:meth:`natural_key_values`).

    What the rest of qbo_sync asks about the entity (the registry, :mod:`qbo_sync.registry`, derives every list of
    entities from these): ``name_list`` says whether it is a QBO name list (kept unique by name, made inactive
    rather than deleted: customers, items) or a transaction (invoices, payments); ``depends_on`` names the entities
    whose records must be in QBO first (an invoice's customer and items), which also orders pushes in a chunk and
    pulls in an import; ``reads`` are the QBO entities whose changes its pull reads (default: itself, when it
    pulls; payments read invoices, payments and refund receipts); ``triggered_by`` the QBO entity names whose
    webhook events ask for its pull (default: ``reads``); ``host_entity`` the entity whose host rows (adapter) it
    is written onto (default: itself; payment state lands on invoices); ``same_record`` the link predicate: on a
    natural-key clash, whether the QBO record found is clearly the host row's twin (``None``: the key alone
    decides); ``qbo_page`` the path of a record's page in QuickBooks' web app (``""``: none); ``plural`` the word
    for many, which also names its nightly schedule (default: the lowercase name plus "s").
    """

    qbo_name: str
    direction: Direction
    fields: tuple[str, ...]
    policies: Mapping[str, Policy] = field(default_factory=dict)
    critical_fields: frozenset[str] = frozenset()
    kinds: Mapping[str, FieldKind] = field(default_factory=dict)
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    natural_keys: tuple[NaturalKey, ...] = ()
    name_list: bool = False
    depends_on: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    triggered_by: tuple[str, ...] = ()
    host_entity: str = ""
    same_record: Callable[[Mapping[str, Any], Mapping[str, Any]], bool] | None = None
    qbo_page: str = ""
    plural: str = ""

    def __post_init__(self) -> None:
        # Defaults that depend on the name and direction (the dataclass is frozen, hence object.__setattr__).
        if not self.reads and self.direction is not Direction.PUSH:
            object.__setattr__(self, "reads", (self.qbo_name,))
        if not self.triggered_by:
            object.__setattr__(self, "triggered_by", self.reads)
        if not self.host_entity:
            object.__setattr__(self, "host_entity", self.qbo_name)
        if not self.plural:
            object.__setattr__(self, "plural", f"{self.qbo_name.lower()}s")
        if self.qbo_name in self.depends_on:
            raise ValueError(f"{self.qbo_name}: an entity cannot depend on itself")
        if self.direction is Direction.PUSH and self.reads:
            raise ValueError(f"{self.qbo_name}: a push-only entity reads nothing from QBO")
        known = set(self.fields)
        unknown_keys = [k.field for k in self.natural_keys if k.field not in known]
        if unknown_keys:
            raise ValueError(f"{self.qbo_name}: natural keys name unknown fields {unknown_keys}")
        for name, mapping in (("policies", self.policies), ("kinds", self.kinds)):
            unknown = set(mapping) - known
            if unknown:
                raise ValueError(f"{self.qbo_name}: {name} name unknown fields {sorted(unknown)}")
        if not self.critical_fields <= known:
            unknown_critical = sorted(self.critical_fields - known)
            raise ValueError(f"{self.qbo_name}: unknown critical fields {unknown_critical}")
        for group, members in self.groups.items():
            if not set(members) <= known:
                raise ValueError(f"{self.qbo_name}: group {group} names unknown fields")

    def policy_for(self, name: str) -> Policy:
        """The conflict policy of ``name`` (pull-only entities are QBO-owned throughout)."""
        if self.direction is Direction.PULL:
            return Policy.QBO_OWNS
        return self.policies.get(name, Policy.NEWEST_WINS)

    def kind_for(self, name: str) -> FieldKind:
        return self.kinds.get(name, FieldKind.TEXT)

    def natural_key_values(self, values: Mapping[str, Any]) -> dict[str, str]:
        """``{field: normalised value}`` for each natural key ``values`` has (canonical values of either side)."""
        keys = {k.field: k.of(values) for k in self.natural_keys}
        return {name: key for name, key in keys.items() if key}

    @property
    def unique_key(self) -> NaturalKey | None:
        """The key QBO keeps unique (DisplayName, item Name): a create with a taken one is refused (6240)."""
        return self.natural_keys[0] if self.natural_keys else None

    @property
    def pushes(self) -> bool:
        """Whether host rows are sent to QBO (both ways or push only)."""
        return self.direction is not Direction.PULL

    @property
    def pulls(self) -> bool:
        """Whether QBO's changes are read into the host (both ways or pull only)."""
        return self.direction is not Direction.PUSH

    @property
    def qbo_owned_fields(self) -> frozenset[str]:
        return frozenset(f for f in self.fields if self.policy_for(f) is Policy.QBO_OWNS)

    @property
    def host_owned_fields(self) -> frozenset[str]:
        return frozenset(f for f in self.fields if self.policy_for(f) is Policy.HOST_OWNS)


class Mapper(Protocol):
    """What every entity's mapping module provides (a module satisfies this Protocol: its functions and ``SPEC``).

    Entity-specific helpers (an invoice's ``validate``, a payment's ``payment_state``) stay in their module and are
    called through it; the engine reaches an entity's common conversions through this shape only.
    """

    SPEC: EntitySpec

    def to_qbo(self, values: Mapping[str, Any], *, qbo_id: str | None = None, sync_token: str | None = None,
               sparse: bool = True, **context: Any) -> dict[str, Any]:
        """The QBO payload of canonical values (a sparse update when ``qbo_id`` and ``sparse``)."""
        ...

    def from_qbo(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The canonical values of a (bare or wrapped) QBO record."""
        ...

    def qbo_updated_at(self, payload: Mapping[str, Any]) -> dt.datetime:
        """The record's ``MetaData.LastUpdatedTime`` in UTC."""
        ...


# --- money ----------------------------------------------------------------------------------------


def parse_decimal(value: Any, *, field_name: str = "value") -> Decimal:
    """Parse a QBO or host number into an exact ``Decimal``.

    ``int``, ``str`` and ``Decimal`` are taken exactly; a ``float`` (as ``json.loads`` gives for ``100.0``)
    goes through ``str()`` first, so ``0.1`` becomes ``Decimal("0.1")`` and not the binary approximation.
    ``bool`` and non-finite numbers are refused.
    """
    if isinstance(value, bool) or value is None:
        raise MappingError(f"{field_name}: expected a number, got {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | float | str):
        try:
            result = Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise MappingError(f"{field_name}: {value!r} is not a number") from exc
    else:
        raise MappingError(f"{field_name}: expected a number, got {type(value).__name__}")
    if not result.is_finite():
        raise MappingError(f"{field_name}: {value!r} is not a finite number")
    return result


def money(value: Any, *, field_name: str = "value") -> Decimal:
    """An amount as a ``Decimal`` quantized to cents (half up, as QBO rounds)."""
    return parse_decimal(value, field_name=field_name).quantize(CENT, rounding=ROUND_HALF_UP)


def optional_decimal(value: Any, *, field_name: str = "value") -> Decimal | None:
    return None if value is None or value == "" else parse_decimal(value, field_name=field_name)


# --- time -----------------------------------------------------------------------------------------


def parse_datetime(value: Any, *, field_name: str = "value") -> dt.datetime:
    """Parse a QBO timestamp (``2020-09-29T05:58:16-07:00``, optionally with fractions or ``Z``) to aware UTC.

    A timestamp without an offset is refused rather than guessed: QBO always sends one, and a naive value
    would make "newest wins" compare apples with oranges.
    """
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError as exc:
            raise MappingError(f"{field_name}: {value!r} is not an ISO-8601 timestamp") from exc
    else:
        raise MappingError(f"{field_name}: expected a timestamp, got {value!r}")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise MappingError(f"{field_name}: {value!r} has no UTC offset")
    return parsed.astimezone(dt.UTC)


def parse_date(value: Any, *, field_name: str = "value") -> dt.date | None:
    """Parse a QBO date (``YYYY-MM-DD``); ``None``/``""`` give ``None``."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError as exc:
            raise MappingError(f"{field_name}: {value!r} is not a YYYY-MM-DD date") from exc
    raise MappingError(f"{field_name}: expected a date, got {value!r}")


def format_date(value: dt.date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        value = value.date()
    return value.isoformat()


def meta_updated_at(payload: Mapping[str, Any], qbo_name: str) -> dt.datetime:
    """``MetaData.LastUpdatedTime`` of a (bare or wrapped) entity as an aware UTC datetime."""
    data = unwrap(payload, qbo_name)
    meta = data.get("MetaData") or {}
    stamp = meta.get("LastUpdatedTime")
    if not stamp:
        raise MappingError(f"{qbo_name} {data.get('Id')!r} has no MetaData.LastUpdatedTime")
    return parse_datetime(stamp, field_name=f"{qbo_name}.MetaData.LastUpdatedTime")


def require_aware(value: dt.datetime, name: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise MappingError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value


# --- payload helpers ------------------------------------------------------------------------------


def unwrap(payload: Mapping[str, Any], qbo_name: str) -> Mapping[str, Any]:
    """Accept an entity either bare (``{"Id": ...}``) or wrapped as QBO answers (``{"Invoice": {...}}``)."""
    inner = payload.get(qbo_name)
    if isinstance(inner, Mapping):
        return inner
    return payload


def ref(value: str | Mapping[str, Any]) -> dict[str, Any]:
    """A QBO reference ``{"value": id}`` from an id or an existing reference dict."""
    if isinstance(value, Mapping):
        if "value" not in value:
            raise MappingError(f"reference {value!r} has no 'value'")
        return {"value": str(value["value"]), **{k: v for k, v in value.items() if k == "name"}}
    return {"value": str(value)}


def ref_value(value: Any) -> str:
    """The id inside a QBO reference, or ``""``."""
    if isinstance(value, Mapping):
        inner = value.get("value")
        return "" if inner is None else str(inner)
    return ""


def text(value: Any) -> str:
    return "" if value is None else str(value)


def jsonable(payload: Any) -> Any:
    """A copy of ``payload`` that ``json.dumps`` accepts: ``Decimal`` -> number, ``date`` -> ``YYYY-MM-DD``.

    Integral decimals become ``int``. Others become ``float`` *only for serialisation*: Python writes a float
    with the shortest text that reads back to it, so a cent amount such as ``Decimal("1234567.89")`` is
    written as ``1234567.89`` exactly (true for up to 15 significant digits, far beyond any invoice). No
    arithmetic is done on the float.
    """
    if isinstance(payload, Mapping):
        return {k: jsonable(v) for k, v in payload.items()}
    if isinstance(payload, list | tuple):
        return [jsonable(v) for v in payload]
    if isinstance(payload, Decimal):
        if payload == payload.to_integral_value():
            return int(payload)
        if len(payload.as_tuple().digits) > 15:
            raise MappingError(f"{payload} has too many digits to serialise exactly")
        return float(payload)
    if isinstance(payload, dt.datetime):
        return payload.isoformat()
    if isinstance(payload, dt.date):
        return payload.isoformat()
    return payload


# --- normalisation and comparison -----------------------------------------------------------------


def normalize(kind: FieldKind, value: Any) -> Any:
    """The form in which two values of a field are compared.

    * TEXT: ``None`` and ``""`` are the same; surrounding whitespace is ignored (QBO trims what it stores).
    * EMAIL: as TEXT, and casefolded: ``Jane@X.com`` and ``jane@x.com`` reach the same mailbox, and QBO keeps
      whatever case was typed, so a case-only difference must not raise a conflict.
    * MONEY: quantized to cents, whatever the input type (``"12.5"``, ``12.5``, ``Decimal("12.50")``).
    * DECIMAL: exact value (``Decimal("1.0") == Decimal("1")``).
    * BOOL: ``bool(value)``; ``None`` (unknown) stays ``None``.
    * DATE: ``date`` or ``YYYY-MM-DD`` text.
    """
    if kind is FieldKind.TEXT:
        return text(value).strip()
    if kind is FieldKind.EMAIL:
        return text(value).strip().casefold()
    if kind is FieldKind.MONEY:
        return None if value is None or value == "" else money(value)
    if kind is FieldKind.DECIMAL:
        return optional_decimal(value)
    if kind is FieldKind.BOOL:
        return None if value is None else bool(value)
    if kind is FieldKind.DATE:
        return parse_date(value)
    return value


def values_equal(spec: EntitySpec, name: str, left: Any, right: Any) -> bool:
    """Whether two values of ``spec``'s field ``name`` are the same once normalised."""
    kind = spec.kind_for(name)
    try:
        return bool(normalize(kind, left) == normalize(kind, right))
    except MappingError:
        return bool(left == right)


def expand_groups(spec: EntitySpec, changed: Mapping[str, Any], full: Mapping[str, Any]) -> dict[str, Any]:
    """``changed`` plus, for every group one of its fields belongs to, the group's other fields from ``full``.

    QBO replaces a nested object (such as ``BillAddr``) as a whole even in a sparse update, so pushing only
    the changed ``bill_city`` would clear the street. Call this on a merge's ``to_qbo`` with the host's
    current values before :func:`to_qbo`.
    """
    result = dict(changed)
    for members in spec.groups.values():
        if any(m in changed for m in members):
            for m in members:
                if m not in result and m in full:
                    result[m] = full[m]
    return result


def missing_fields(
    spec: EntitySpec, values: Mapping[str, Any], names: Iterable[str] | None = None
) -> list[str]:
    return [f for f in (spec.fields if names is None else names) if f not in values]
