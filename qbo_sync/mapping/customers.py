"""Customer: synced both ways, every field "newest wins" unless configured critical, except ``taxable``.

Canonical fields: display_name, company_name, given_name, family_name, email, phone, bill_line1, bill_line2,
bill_city, bill_region, bill_postal_code, bill_country (all text), taxable and active (bool).

QBO side: ``DisplayName``, ``CompanyName``, ``GivenName``, ``FamilyName``, ``PrimaryEmailAddr.Address``,
``PrimaryPhone.FreeFormNumber``, ``BillAddr{Line1, Line2, City, CountrySubDivisionCode, PostalCode,
Country}``, ``Taxable``, ``Active``. Customers are never deleted in QBO; deleting in the host is a push of
``active=False``.

Tax: ``taxable`` is ``Taxable`` (false = a tax-exempt customer, whose invoices QBO charges no sales tax). QBO owns
the tax setup as it owns an item's price (policy ``qbo_owns``): a new customer is created with the host's value,
after that a host edit is put back to QBO's on the next pull, and an edit in QBO reaches the host. ``Taxable``
absent from a QBO payload reads as true (QBO's default for a customer). A host that keeps no taxability leaves
``taxable`` out of its values and nothing about it is sent or merged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from .base import (
    Direction,
    EntitySpec,
    FieldKind,
    MappingError,
    NaturalKey,
    Policy,
    fold_text,
    meta_updated_at,
    missing_fields,
    text,
    unwrap,
)

__all__ = ["SPEC", "from_qbo", "qbo_updated_at", "same_record", "to_qbo"]

QBO_NAME = "Customer"

#: canonical field -> key inside ``BillAddr``
_BILL_ADDR = {
    "bill_line1": "Line1",
    "bill_line2": "Line2",
    "bill_city": "City",
    "bill_region": "CountrySubDivisionCode",
    "bill_postal_code": "PostalCode",
    "bill_country": "Country",
}
#: canonical field -> top-level QBO key
_TOP_LEVEL = {
    "display_name": "DisplayName",
    "company_name": "CompanyName",
    "given_name": "GivenName",
    "family_name": "FamilyName",
}

def same_record(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> bool:
    """The link predicate: on a DisplayName clash, a QBO customer is the host row's twin only when it is clearly the
    same customer: the same email, or the same given and family name, or the same company name (each compared in
    the form the natural keys use)."""
    email = SPEC.natural_key_values(ours).get("email")
    if email and email == SPEC.natural_key_values(theirs).get("email"):
        return True
    for name_fields in (("given_name", "family_name"), ("company_name",)):
        a = [fold_text(ours.get(f)) for f in name_fields]
        b = [fold_text(theirs.get(f)) for f in name_fields]
        if all(a) and a == b:
            return True
    return False


SPEC = EntitySpec(
    qbo_name=QBO_NAME,
    direction=Direction.BOTH,
    fields=(
        "display_name",
        "company_name",
        "given_name",
        "family_name",
        "email",
        "phone",
        *_BILL_ADDR,
        "taxable",
        "active",
    ),
    policies={"taxable": Policy.QBO_OWNS},
    kinds={"email": FieldKind.EMAIL, "taxable": FieldKind.BOOL, "active": FieldKind.BOOL},
    groups={"bill_address": tuple(_BILL_ADDR)},
    # The same customer on both sides: DisplayName (unique in QBO, case-insensitively in practice), then email.
    natural_keys=(NaturalKey("display_name", "DisplayName"), NaturalKey("email", "PrimaryEmailAddr.Address")),
    name_list=True,
    same_record=same_record,
    qbo_page="customerdetail?nameId=",
)


def to_qbo(
    values: Mapping[str, Any],
    *,
    qbo_id: str | None = None,
    sync_token: str | None = None,
    sparse: bool = True,
    **context: Any,
) -> dict[str, Any]:
    """A Customer payload for create (``qbo_id`` None) or update.

    Create: every non-empty field in ``values``. Sparse update (the default): ``Id``, ``SyncToken``,
    ``sparse: true`` and exactly the fields present in ``values``; an empty value is sent as ``""`` so the
    field is cleared in QBO. ``BillAddr`` is one object that QBO replaces whole: pass all ``bill_*`` fields
    when any of them changes (see :func:`qbo_sync.mapping.base.expand_groups`). Full update (``sparse=False``)
    requires every synced field. ``context`` is accepted for a uniform signature and unused.
    """
    creating = qbo_id is None
    if not creating and sync_token is None:
        raise MappingError("a Customer update needs the current SyncToken")
    if not creating and not sparse:
        missing = missing_fields(SPEC, values)
        if missing:
            raise MappingError(f"a full Customer update needs every synced field; missing {missing}")

    def keep(value: Any) -> bool:
        # On create an empty value is simply left out; on update it clears the field.
        return not creating or text(value).strip() != ""

    payload: dict[str, Any] = {}
    if not creating:
        payload["Id"] = str(qbo_id)
        payload["SyncToken"] = str(sync_token)
        if sparse:
            payload["sparse"] = True
    for name, key in _TOP_LEVEL.items():
        if name in values and keep(values[name]):
            payload[key] = text(values[name])
    if "email" in values and keep(values["email"]):
        payload["PrimaryEmailAddr"] = {"Address": text(values["email"])}
    if "phone" in values and keep(values["phone"]):
        payload["PrimaryPhone"] = {"FreeFormNumber": text(values["phone"])}
    addr = {
        key: text(values[name]) for name, key in _BILL_ADDR.items() if name in values and keep(values[name])
    }
    if addr:
        payload["BillAddr"] = addr
    if "taxable" in values and values["taxable"] is not None:
        payload["Taxable"] = bool(values["taxable"])
    if "active" in values and values["active"] is not None:
        payload["Active"] = bool(values["active"])
    derivable = payload.get("GivenName") or payload.get("FamilyName")
    if creating and not payload.get("DisplayName") and not derivable:
        raise MappingError("a new Customer needs a display name (or a given/family name to derive it from)")
    return payload


def from_qbo(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Canonical values from a Customer payload (bare or wrapped); absent text fields become ``""``."""
    data = unwrap(payload, QBO_NAME)
    email = data.get("PrimaryEmailAddr") or {}
    phone = data.get("PrimaryPhone") or {}
    addr = data.get("BillAddr") or {}
    values: dict[str, Any] = {name: text(data.get(key)) for name, key in _TOP_LEVEL.items()}
    values["email"] = text(email.get("Address"))
    values["phone"] = text(phone.get("FreeFormNumber"))
    values.update({name: text(addr.get(key)) for name, key in _BILL_ADDR.items()})
    values["taxable"] = bool(data.get("Taxable", True))
    values["active"] = bool(data.get("Active", True))
    return values


def qbo_updated_at(payload: Mapping[str, Any]) -> dt.datetime:
    """``MetaData.LastUpdatedTime`` as an aware UTC datetime."""
    return meta_updated_at(payload, QBO_NAME)
