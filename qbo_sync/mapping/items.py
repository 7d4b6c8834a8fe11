"""Item: synced both ways, QBO primary.

Policies (issue 5): QBO always wins ``unit_price``, ``taxable`` and ``active`` (a host edit is overwritten on the
next pull and the overwrite recorded); the host owns ``description`` when it changed it; ``name``, ``sku`` and
``type`` are "newest wins".

Tax: ``taxable`` is ``Taxable`` (whether sales tax applies to the item). QBO owns the tax setup as it owns the
price: a new item is created with the host's value, after that QBO's value wins. ``Taxable`` absent from a QBO
payload reads as false. A host that keeps no taxability leaves ``taxable`` out of its values: nothing is sent or
merged for it, and its invoice lines carry no tax code (see ``mapping.invoices``).

Items created in the host are pushed with the income account from settings, passed in as ``income_account_ref``
context.

Canonical fields: name, sku, description (text), unit_price (Decimal, exact: QBO allows sub-cent unit prices),
type ("Service" | "NonInventory" | "Inventory"), taxable (bool), active (bool).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .base import (
    Direction,
    EntitySpec,
    FieldKind,
    MappingError,
    NaturalKey,
    Policy,
    format_date,
    meta_updated_at,
    missing_fields,
    parse_decimal,
    ref,
    text,
    trim_text,
    unwrap,
)

__all__ = ["ITEM_TYPES", "SPEC", "from_qbo", "qbo_updated_at", "same_record", "to_qbo"]

QBO_NAME = "Item"
ITEM_TYPES = ("Service", "NonInventory", "Inventory")

def same_record(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> bool:
    """The link predicate: on a Name clash, a QBO item is the host row's twin unless both have a SKU and the SKUs
    differ (a SKU is a code: compared trimmed, case kept)."""
    return not ours.get("sku") or not theirs.get("sku") or trim_text(ours.get("sku")) == trim_text(theirs.get("sku"))


SPEC = EntitySpec(
    qbo_name=QBO_NAME,
    direction=Direction.BOTH,
    fields=("name", "sku", "description", "unit_price", "type", "taxable", "active"),
    policies={
        "unit_price": Policy.QBO_OWNS,
        "taxable": Policy.QBO_OWNS,
        "active": Policy.QBO_OWNS,
        "description": Policy.HOST_OWNS,
    },
    kinds={"unit_price": FieldKind.DECIMAL, "taxable": FieldKind.BOOL, "active": FieldKind.BOOL,
           "type": FieldKind.RAW},
    # The same item on both sides: Name (unique in QBO), then the SKU (a code: trimmed, case kept).
    natural_keys=(NaturalKey("name", "Name"), NaturalKey("sku", "Sku", trim_text)),
    name_list=True,
    same_record=same_record,
    qbo_page="items?itemId=",
)

_TEXT = {"name": "Name", "sku": "Sku", "description": "Description"}


def to_qbo(
    values: Mapping[str, Any],
    *,
    qbo_id: str | None = None,
    sync_token: str | None = None,
    sparse: bool = True,
    **context: Any,
) -> dict[str, Any]:
    """An Item payload for create (``qbo_id`` None) or update.

    Create needs ``name``, ``type`` and the context ``income_account_ref`` (an account id or ``{"value":
    id}``); an Inventory item also needs ``expense_account_ref``, ``asset_account_ref`` and ``inv_start_date``
    (a date), with optional ``qty_on_hand`` (default 0). Sparse update: ``Id``, ``SyncToken``, ``sparse:
    true`` and exactly the fields present in ``values`` (empty text is sent as ``""`` to clear it).
    ``unit_price`` is sent as a ``Decimal`` (see :func:`qbo_sync.mapping.base.jsonable`).
    """
    creating = qbo_id is None
    if not creating and sync_token is None:
        raise MappingError("an Item update needs the current SyncToken")
    if not creating and not sparse:
        missing = missing_fields(SPEC, values)
        if missing:
            raise MappingError(f"a full Item update needs every synced field; missing {missing}")

    payload: dict[str, Any] = {}
    if not creating:
        payload["Id"] = str(qbo_id)
        payload["SyncToken"] = str(sync_token)
        if sparse:
            payload["sparse"] = True
    for name, key in _TEXT.items():
        if name in values and (not creating or text(values[name]).strip()):
            payload[key] = text(values[name])
    if values.get("type"):
        if values["type"] not in ITEM_TYPES:
            raise MappingError(f"item type must be one of {ITEM_TYPES}, got {values['type']!r}")
        payload["Type"] = values["type"]
    if "unit_price" in values and values["unit_price"] is not None:
        payload["UnitPrice"] = parse_decimal(values["unit_price"], field_name="unit_price")
    if "taxable" in values and values["taxable"] is not None:
        payload["Taxable"] = bool(values["taxable"])
    if "active" in values and values["active"] is not None:
        payload["Active"] = bool(values["active"])

    if creating:
        if not payload.get("Name", "").strip():
            raise MappingError("a new Item needs a name")
        payload.setdefault("Type", "Service")
        account = context.get("income_account_ref")
        if not account:
            raise MappingError("a new Item needs income_account_ref (the income account from settings)")
        payload["IncomeAccountRef"] = ref(account)
        if payload["Type"] == "Inventory":
            needed = ("expense_account_ref", "asset_account_ref", "inv_start_date")
            absent = [k for k in needed if not context.get(k)]
            if absent:
                raise MappingError(f"a new Inventory item needs context {absent}")
            payload["ExpenseAccountRef"] = ref(context["expense_account_ref"])
            payload["AssetAccountRef"] = ref(context["asset_account_ref"])
            payload["InvStartDate"] = format_date(context["inv_start_date"])
            payload["TrackQtyOnHand"] = True
            payload["QtyOnHand"] = parse_decimal(context.get("qty_on_hand", 0), field_name="qty_on_hand")
    return payload


def from_qbo(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Canonical values from an Item payload (bare or wrapped).

    A missing ``UnitPrice`` (QBO omits it for items created without one) is ``Decimal("0")``; a ``Type``
    outside the three synced ones (``Category``, ``Group``) is kept as QBO sends it so callers can skip such
    items.
    """
    data = unwrap(payload, QBO_NAME)
    values: dict[str, Any] = {name: text(data.get(key)) for name, key in _TEXT.items()}
    price = data.get("UnitPrice")
    values["unit_price"] = Decimal("0") if price is None else parse_decimal(price, field_name="UnitPrice")
    values["type"] = text(data.get("Type")) or "Service"
    values["taxable"] = bool(data.get("Taxable", False))
    values["active"] = bool(data.get("Active", True))
    return values


def qbo_updated_at(payload: Mapping[str, Any]) -> dt.datetime:
    """``MetaData.LastUpdatedTime`` as an aware UTC datetime."""
    return meta_updated_at(payload, QBO_NAME)
