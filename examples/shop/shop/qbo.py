"""How the shop's models look to qbo_sync: one adapter per entity and the tenant resolver (QBO_SYNC settings).

Each adapter turns a row into the entity's canonical values (the keys of ``qbo_sync.mapping.<entity>.SPEC``) and
back; the shop keeps only the fields it has (a customer's full name and email, an item's title and price) and
gives the others their empty value.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db import models

from qbo_sync.adapters import HostAdapter, InvoiceAdapterMixin
from shop.models import Customer, Invoice, Item, Store


def stores_for_user(user: Any) -> models.QuerySet:
    """The stores whose sync data a user may see: staff see every store, others none."""
    if user.is_authenticated and user.is_staff:
        return Store.objects.all()
    return Store.objects.none()


class _ShopAdapter(HostAdapter):
    organization_field = "store_id"
    updated_at_field = "modified"
    #: canonical name -> the shop's column
    columns: dict[str, str] = {}
    #: canonical values the shop has no column for
    empty: dict[str, Any] = {}

    def to_values(self, obj: models.Model) -> dict[str, Any]:
        return {**self.empty, **{name: getattr(obj, column) for name, column in self.columns.items()}}

    def apply_values(self, obj: models.Model, values: dict[str, Any]) -> None:
        changed = []
        for name, column in self.columns.items():
            if name in values and values[name] is not None and getattr(obj, column) != values[name]:
                setattr(obj, column, values[name])
                changed.append(column)
        if changed:
            obj.save(update_fields=[*changed, "modified"])

    def clean_value(self, name: str, value: Any) -> Any:
        # A typed conflict value is checked by the shop's own column (``email`` here, ``full_name`` for a name).
        return super().clean_value(self.columns.get(name, name), value)

    def create_from_values(self, organization_id: int, values: dict[str, Any]) -> models.Model:
        data = {column: values[name] for name, column in self.columns.items() if values.get(name) is not None}
        return self.model._default_manager.create(store_id=organization_id, **data)


class CustomerAdapter(_ShopAdapter):
    entity = "Customer"
    model = Customer
    columns = {"display_name": "full_name", "email": "email"}
    empty = {"company_name": "", "given_name": "", "family_name": "", "phone": "", "bill_line1": "",
             "bill_line2": "", "bill_city": "", "bill_region": "", "bill_postal_code": "", "bill_country": "",
             "active": True}

    def natural_keys(self, obj: models.Model) -> dict[str, str]:
        return {"display_name": obj.full_name, "email": obj.email}


class ItemAdapter(_ShopAdapter):
    entity = "Item"
    model = Item
    columns = {"name": "title", "unit_price": "price"}
    empty = {"sku": "", "description": "", "type": "Service", "active": True}

    def natural_keys(self, obj: models.Model) -> dict[str, str]:
        return {"name": obj.title, "sku": ""}


class InvoiceAdapter(InvoiceAdapterMixin, HostAdapter):
    """Pushed only; QuickBooks' payment state comes back onto ``paid``, ``balance`` and ``payment_state``."""

    entity = "Invoice"
    model = Invoice
    organization_field = "store_id"
    updated_at_field = "modified"

    def to_values(self, obj: models.Model) -> dict[str, Any]:
        lines = list(obj.lines.all())
        return {
            "doc_number": obj.reference,
            "customer_object_id": str(obj.customer_id),
            "txn_date": obj.issued_on,
            "due_date": obj.due_on,
            "private_note": "",
            "total": sum((line.qty * line.price for line in lines), Decimal("0")),
            "lines": [{"item_object_id": str(line.item_id), "description": line.item.title, "qty": line.qty,
                       "unit_price": line.price, "amount": line.qty * line.price} for line in lines],
        }

    def dependencies(self, obj: models.Model) -> Iterable[models.Model]:
        yield obj.customer
        yield from {line.item_id: line.item for line in obj.lines.all()}.values()

    def auto_push(self, obj: models.Model, created: bool) -> bool:
        return False  # invoices are sent on purpose (`qbo_sync push invoice`)

    def is_void(self, obj: models.Model) -> bool:
        return obj.cancelled

    def mark_sent(self, obj: models.Model) -> None:
        if not obj.sent:
            obj.sent = True
            obj.save(update_fields=["sent", "modified"])

    def payment_state(self, obj: models.Model) -> dict[str, Any]:
        return {"amount_due": obj.balance, "payment_status": obj.payment_state}

    def apply_payment_state(self, obj: models.Model, state: dict[str, Any]) -> None:
        wanted = {"paid": state.get("amount_paid"), "balance": state.get("amount_due"),
                  "payment_state": state.get("payment_status")}
        changed = [f for f, v in wanted.items() if v is not None and getattr(obj, f) != v]
        for name in changed:
            setattr(obj, name, wanted[name])
        if changed:
            obj.save(update_fields=[*changed, "modified"])
