"""How Batchly's models look to qbo_sync: one adapter per synced entity (named in settings.QBO_SYNC).

Values are the canonical dicts defined by ``qbo_sync.mapping.<entity>.SPEC``. Sales orders have no adapter: they
never sync; converting one to an invoice is what reaches QuickBooks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from django.db import models
from django.utils import timezone

from batchly.models import Customer, Invoice, Item, Membership, Organization
from qbo_sync.adapters import HostAdapter, InvoiceAdapterMixin
from qbo_sync.permissions import Action, has_default_permission

CUSTOMER_FIELDS = (
    "display_name", "company_name", "given_name", "family_name", "email", "phone",
    "bill_line1", "bill_line2", "bill_city", "bill_region", "bill_postal_code", "bill_country", "taxable", "active",
)
PAYMENT_STATE_FIELDS = ("amount_paid", "amount_credited", "amount_refunded", "amount_due", "payment_status",
                        "last_payment_date", "last_payment_id", "tax_amount", "total")
ITEM_FIELDS = ("name", "sku", "description", "unit_price", "type", "taxable", "active")


def organizations_for_user(user: Any) -> models.QuerySet:
    """The organizations whose sync data a user may see (qbo_sync's ORGANIZATION_RESOLVER)."""
    if not user.is_authenticated:
        return Organization.objects.none()
    if user.is_superuser:
        return Organization.objects.all()
    return Organization.objects.filter(pk__in=Membership.objects.filter(user=user).values("organization_id"))


#: What each membership role may do with the QuickBooks sync (qbo_sync's PERMISSION_CHECKER; docs/security.md).
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    Membership.Role.VIEWER: frozenset({Action.VIEW}),
    Membership.Role.OPERATOR: frozenset({Action.VIEW, Action.START_SYNC, Action.OPERATE, Action.RESOLVE}),
    Membership.Role.ACCOUNTANT: frozenset({Action.VIEW, Action.START_SYNC, Action.OPERATE, Action.RESOLVE}),
    Membership.Role.OWNER: frozenset(Action),
}


def may_act(user: Any, action: str, organization: Organization) -> bool:
    """qbo_sync's PERMISSION_CHECKER: the user's role in that organization grants the action, or a Django
    permission granted in the admin does (qbo_sync's default rule)."""
    role = Membership.objects.filter(user=user, organization=organization).values_list("role", flat=True).first()
    return (role is not None and action in ROLE_ACTIONS.get(role, frozenset())) or \
        has_default_permission(user, action)


class _FieldsAdapter(HostAdapter):
    fields: tuple[str, ...] = ()

    def to_values(self, obj: models.Model) -> dict[str, Any]:
        return {name: getattr(obj, name) for name in self.fields}

    def apply_values(self, obj: models.Model, values: dict[str, Any]) -> None:
        changed = [name for name in self.fields if name in values and getattr(obj, name) != values[name]]
        for name in changed:
            setattr(obj, name, values[name] if values[name] is not None else "")
        if changed:
            obj.save(update_fields=[*changed, "updated_at"])

    def create_from_values(self, organization_id: int, values: dict[str, Any]) -> models.Model:
        return self.model._default_manager.create(**self._row(organization_id, values))

    def bulk_create_from_values(self, organization_id: int, values_list: list[dict[str, Any]]) -> list[models.Model]:
        # bulk_create sets primary keys on SQLite and PostgreSQL; it sends no signals, so nothing echoes back.
        return self.model._default_manager.bulk_create(
            [self.model(**self._row(organization_id, values)) for values in values_list], batch_size=500
        )

    def _row(self, organization_id: int, values: dict[str, Any]) -> dict[str, Any]:
        data = {name: values[name] for name in self.fields if values.get(name) is not None}
        return {"organization_id": organization_id, **data}


class CustomerAdapter(_FieldsAdapter):
    entity = "Customer"
    model = Customer
    fields = CUSTOMER_FIELDS


class ItemAdapter(_FieldsAdapter):
    entity = "Item"
    model = Item
    fields = ITEM_FIELDS

    def to_values(self, obj: models.Model) -> dict[str, Any]:
        values = super().to_values(obj)
        values["unit_price"] = Decimal(values["unit_price"])
        return values


class InvoiceAdapter(InvoiceAdapterMixin, HostAdapter):
    """Invoices are pushed only. Customer and items are given as host ids; qbo_sync resolves them to QBO ids."""

    entity = "Invoice"
    model = Invoice

    def get_queryset(self, organization_id: int) -> models.QuerySet:
        return super().get_queryset(organization_id).select_related("customer").prefetch_related("lines__item")

    def to_values(self, obj: models.Model) -> dict[str, Any]:
        return {
            "doc_number": obj.number,
            "customer_object_id": str(obj.customer_id),
            "txn_date": obj.issue_date,
            "due_date": obj.due_date,
            "private_note": obj.memo,
            "total": obj.subtotal,  # before tax: QuickBooks computes the tax and its answer sets tax_amount and total
            "lines": [
                {
                    "item_object_id": str(line.item_id),
                    "description": line.description,
                    "qty": Decimal(line.quantity),
                    "unit_price": Decimal(line.unit_price),
                    "amount": line.amount,
                    "taxable": line.item.taxable,
                }
                for line in obj.lines.all()
            ],
        }

    def dependencies(self, obj: models.Model) -> Iterable[models.Model]:
        yield obj.customer
        seen: set[int] = set()
        for line in obj.lines.all():
            if line.item_id not in seen:
                seen.add(line.item_id)
                yield line.item

    def auto_push(self, obj: models.Model, created: bool) -> bool:
        # Invoices are sent deliberately ("sync selected", the API, `qbo_sync push invoice`); a void of a sent
        # invoice is pushed on its own (qbo_sync's receivers see the status change).
        return False

    def refresh_overdue(self, organization_id: int, today: Any) -> int:
        return Invoice.objects.filter(
            organization_id=organization_id, status=Invoice.Status.SENT, payment_status=Invoice.PaymentStatus.OPEN,
            due_date__lt=today, amount_due__gt=0,
        ).update(payment_status=Invoice.PaymentStatus.OVERDUE)

    def void_ids(self, organization_id: int, object_ids: list[str]) -> list[str]:
        return [str(pk) for pk in Invoice.objects.filter(organization_id=organization_id, pk__in=object_ids,
                                                         status=Invoice.Status.VOID).values_list("pk", flat=True)]

    def is_void(self, obj: models.Model) -> bool:
        return obj.status == Invoice.Status.VOID

    def mark_sent(self, obj: models.Model) -> None:
        obj.mark_sent()

    def mark_sent_many(self, objs: Sequence[models.Model]) -> None:
        Invoice.mark_sent_many(objs)

    def apply_payment_state(self, obj: models.Model, state: dict[str, Any]) -> None:
        changes = self._payment_changes(obj, state)
        for name, value in changes.items():
            setattr(obj, name, value)
        if changes:
            obj.save(update_fields=[*changes, "updated_at"])

    def apply_payment_states(self, pairs: Sequence[tuple[models.Model, dict[str, Any]]]) -> None:
        # A pushed chunk's answers mostly change the same few fields to the same values (an invoice past due when
        # sent turns overdue): one UPDATE per distinct change instead of a save (and its locked-invoice check, a
        # SELECT) per invoice. Only payment fields are written, which a sent invoice accepts.
        groups: dict[tuple[tuple[str, Any], ...], list[models.Model]] = {}
        for obj, state in pairs:
            changes = self._payment_changes(obj, state)
            if changes:
                groups.setdefault(tuple(sorted(changes.items())), []).append(obj)
        now = timezone.now()
        for key, objs in groups.items():
            changes = dict(key)
            Invoice.objects.filter(pk__in=[o.pk for o in objs]).update(**changes, updated_at=now)
            for obj in objs:
                for name, value in changes.items():
                    setattr(obj, name, value)
                obj.updated_at = now

    @staticmethod
    def _payment_changes(obj: models.Model, state: dict[str, Any]) -> dict[str, Any]:
        """The payment fields whose value in ``state`` differs from the row's (QuickBooks' "void" is kept out)."""
        changes = {}
        for name in PAYMENT_STATE_FIELDS:
            if name not in state:
                continue
            value = state[name]
            if value is None and name == "last_payment_id":
                value = ""
            if name == "payment_status" and value not in Invoice.PaymentStatus.values:
                continue  # "void" in QBO: logged by qbo_sync, kept here
            if getattr(obj, name) != value:
                changes[name] = value
        return changes
