"""Batchly's own domain: organizations and their customers, items, sales orders and invoices.

Batchly is multi-tenant: every business row belongs to one organization, and every query a view or a service makes
goes through a tenant-scoped helper (``for_organization`` / ``for_user``) so no path can read another tenant's rows.
Money is ``Decimal`` everywhere.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models, transaction
from django.utils import timezone

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

CENTS = Decimal("0.01")


def money(value: Any) -> Decimal:
    """Round a money amount to cents, half up, as invoices are printed."""
    from decimal import ROUND_HALF_UP

    return Decimal(str(value)).quantize(CENTS, rounding=ROUND_HALF_UP)


def same_organization(owner: Any, **related: Any) -> None:
    """Raise a ValidationError naming each related row (``field=row``) that is not in ``owner``'s organization.

    A row and everything it points at belong to one organization: an invoice never bills another tenant's customer
    and its lines never sell another tenant's items. The admin calls ``clean`` before it saves anything.
    """
    org_id = owner.organization_id
    errors = {name: f"Choose a {row._meta.verbose_name} of this organization."
              for name, row in related.items()
              if row is not None and org_id is not None and row.organization_id != org_id}
    if errors:
        raise ValidationError(errors)


class Organization(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ACCOUNTANT = "accountant", "Accountant"
        OPERATOR = "operator", "Operator"
        VIEWER = "viewer", "Viewer"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.OPERATOR)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="uniq_membership")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.organization} ({self.role})"


class TenantQuerySet(models.QuerySet):
    """The only way views and services reach tenant rows: scoped to one organization or to a user's organizations."""

    def for_organization(self, organization: Organization | int) -> TenantQuerySet:
        org_id = organization.pk if isinstance(organization, Organization) else organization
        return self.filter(organization_id=org_id)

    def for_user(self, user: AbstractBaseUser | AnonymousUser) -> TenantQuerySet:
        if not user.is_authenticated:
            return self.none()
        if getattr(user, "is_superuser", False):
            return self.all()
        return self.filter(organization__memberships__user=user)


class TenantModel(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True


class Customer(TenantModel):
    display_name = models.CharField(max_length=500)
    company_name = models.CharField(max_length=200, blank=True)
    given_name = models.CharField(max_length=100, blank=True)
    family_name = models.CharField(max_length=100, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=30, blank=True)
    bill_line1 = models.CharField("billing address line 1", max_length=500, blank=True)
    bill_line2 = models.CharField("billing address line 2", max_length=500, blank=True)
    bill_city = models.CharField("billing city", max_length=255, blank=True)
    bill_region = models.CharField("billing state/region", max_length=255, blank=True)
    bill_postal_code = models.CharField("billing postal code", max_length=30, blank=True)
    bill_country = models.CharField("billing country", max_length=255, blank=True)
    taxable = models.BooleanField(default=True, help_text="Sales tax applies; off for a tax-exempt customer. "
                                  "QuickBooks owns it once synced.")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["display_name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "display_name"], name="uniq_customer_display_name"),
        ]
        indexes = [models.Index(fields=["organization", "email"])]

    def __str__(self) -> str:
        return self.display_name


class Item(TenantModel):
    class Type(models.TextChoices):
        SERVICE = "Service", "Service"
        NON_INVENTORY = "NonInventory", "Non-inventory"
        INVENTORY = "Inventory", "Inventory"

    name = models.CharField(max_length=100)
    sku = models.CharField("SKU", max_length=100, blank=True)
    description = models.TextField(blank=True, max_length=4000)
    unit_price = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal("0"))
    type = models.CharField(max_length=20, choices=Type.choices, default=Type.SERVICE)
    taxable = models.BooleanField(default=True, help_text="Sales tax applies to this item. QuickBooks owns it once "
                                  "synced.")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="uniq_item_name")]
        indexes = [models.Index(fields=["organization", "sku"])]

    def __str__(self) -> str:
        return self.name


class InvoiceError(ValidationError):
    """An operation on an invoice that its state does not allow (e.g. editing one that was sent)."""


class SalesOrder(TenantModel):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        APPROVED = "approved", "Approved"
        INVOICED = "invoiced", "Invoiced"

    number = models.CharField(max_length=30)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="sales_orders")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    delivery_date = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["organization", "number"], name="uniq_sales_order_number")]

    def __str__(self) -> str:
        return f"SO {self.number}"

    def clean(self) -> None:
        super().clean()
        same_organization(self, customer=_related(self, "customer"))

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines.all()), Decimal("0.00"))

    def convert_to_invoice(self, *, number: str | None = None, issue_date: dt.date | None = None,
                           due_days: int = 30) -> Invoice:
        """Make the invoice for an approved order. This, not the order, is what reaches QuickBooks."""
        with transaction.atomic():
            order = SalesOrder.objects.select_for_update().get(pk=self.pk)
            if order.status != SalesOrder.Status.APPROVED:
                raise InvoiceError(
                    f"Sales order {order.number} is {order.get_status_display().lower()}; "
                    "only an approved order can be converted to an invoice."
                )
            issue_date = issue_date or timezone.localdate()
            invoice = Invoice.objects.create(
                organization_id=order.organization_id,
                number=number or Invoice.next_number(order.organization_id),
                customer_id=order.customer_id,
                sales_order=order,
                issue_date=issue_date,
                due_date=issue_date + dt.timedelta(days=due_days),
            )
            InvoiceLine.objects.bulk_create(
                InvoiceLine(invoice=invoice, item_id=line.item_id, description=line.description,
                            quantity=line.quantity, unit_price=line.unit_price, position=line.position)
                for line in order.lines.order_by("position", "pk")
            )
            invoice.recalculate()
            order.status = SalesOrder.Status.INVOICED
            order.save(update_fields=["status", "updated_at"])
            self.status = order.status
            return invoice


class SalesOrderLine(models.Model):
    order = models.ForeignKey(SalesOrder, on_delete=models.CASCADE, related_name="lines")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="+")
    description = models.CharField(max_length=4000, blank=True)
    quantity = models.DecimalField(max_digits=14, decimal_places=4, validators=[MinValueValidator(Decimal("0"))])
    unit_price = models.DecimalField(max_digits=14, decimal_places=4)
    position = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.quantity} x {self.item}"

    def clean(self) -> None:
        super().clean()
        order = _related(self, "order")
        if order is not None:
            same_organization(order, item=_related(self, "item"))

    @property
    def amount(self) -> Decimal:
        return money(self.quantity * self.unit_price)


class Invoice(TenantModel):
    """An invoice. Once sent to QuickBooks it is immutable: a correction is a void plus a new invoice."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SENT = "sent", "Sent"
        VOID = "void", "Void"

    class PaymentStatus(models.TextChoices):
        OPEN = "open", "Open"
        PARTIAL = "partial", "Partially paid"
        PAID = "paid", "Paid"
        OVERDUE = "overdue", "Overdue"
        CREDITED = "credited", "Credited"  # settled by credit memos, no money paid
        REFUNDED = "refunded", "Refunded"  # settled, and everything paid was refunded

    # Fields QuickBooks feeds back (payments, and the sales tax it computed); they stay writable on a sent invoice.
    PAYMENT_FIELDS = frozenset(
        {"amount_paid", "amount_credited", "amount_refunded", "amount_due", "payment_status", "last_payment_date",
         "last_payment_id", "tax_amount", "total", "updated_at"}
    )
    # Fields that fix what was sent; frozen once the invoice left Batchly.
    CONTENT_FIELDS = frozenset(
        {"number", "customer", "customer_id", "issue_date", "due_date", "subtotal", "memo"}
    )

    number = models.CharField(max_length=21)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    sales_order = models.OneToOneField(SalesOrder, null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="invoice")
    replaces = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="replaced_by", help_text="The voided invoice this one corrects.")
    issue_date = models.DateField(default=timezone.localdate)
    due_date = models.DateField()
    memo = models.CharField(max_length=4000, blank=True)
    subtotal = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    # Sales tax as QuickBooks computed it (0 until the invoice is sent); total = subtotal + tax_amount.
    tax_amount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    total = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    amount_paid = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"),
                                      help_text="Money the customer paid (credit memos not included).")
    amount_credited = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"),
                                          help_text="Settled by credit memos applied in QuickBooks.")
    amount_refunded = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"),
                                          help_text="Money paid back to the customer (refund receipts).")
    amount_due = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    payment_status = models.CharField(max_length=10, choices=PaymentStatus.choices, default=PaymentStatus.OPEN)
    last_payment_date = models.DateField(null=True, blank=True)
    last_payment_id = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["-issue_date", "-pk"]
        constraints = [models.UniqueConstraint(fields=["organization", "number"], name="uniq_invoice_number")]
        indexes = [models.Index(fields=["organization", "status"])]

    def __str__(self) -> str:
        return f"Invoice {self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            self._refuse_content_changes(kwargs.get("update_fields"))
        super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        same_organization(self, customer=_related(self, "customer"), sales_order=_related(self, "sales_order"),
                          replaces=_related(self, "replaces"))

    @property
    def is_locked(self) -> bool:
        return self.status in (self.Status.SENT, self.Status.VOID)

    @classmethod
    def next_number(cls, organization_id: int) -> str:
        last = (cls.objects.filter(organization_id=organization_id, number__regex=r"^INV-\d+$")
                .order_by("-pk").values_list("number", flat=True).first())
        seq = int(last.split("-")[1]) + 1 if last else 1001
        return f"INV-{seq}"

    def _refuse_content_changes(self, update_fields: Any) -> None:
        stored = Invoice.objects.filter(pk=self.pk).values("status", *self._content_attnames()).first()
        if stored is None or stored["status"] == self.Status.DRAFT:
            return
        changed = [name for name in self._content_attnames() if stored[name] != getattr(self, name)]
        if update_fields is not None:
            changed = [name for name in changed if name in update_fields or name.removesuffix("_id") in update_fields]
        if stored["status"] == self.Status.VOID and self.status != self.Status.VOID:
            changed.append("status")
        if changed:
            raise InvoiceError(
                f"Invoice {stored.get('number', self.number)} was {stored['status']} and cannot be edited "
                f"(changed: {', '.join(sorted(changed))}). Void it and issue a corrected invoice instead."
            )

    @classmethod
    def _content_attnames(cls) -> list[str]:
        return ["number", "customer_id", "issue_date", "due_date", "subtotal", "memo"]

    def recalculate(self) -> None:
        """Recompute subtotal, total and amount due from the lines (drafts only)."""
        if self.is_locked:
            raise InvoiceError(f"Invoice {self.number} is {self.status}; its lines and totals are final.")
        subtotal = sum((line.amount for line in self.lines.all()), Decimal("0.00"))
        self.subtotal = money(subtotal)
        self.total = money(self.subtotal + self.tax_amount)
        self.amount_due = money(self.total - self.amount_paid)
        self.save(update_fields=["subtotal", "total", "amount_due", "updated_at"])

    def mark_sent(self) -> None:
        """Record that QuickBooks accepted the invoice; from now on it is immutable."""
        if self.status == self.Status.DRAFT:
            now = timezone.now()
            if Invoice.objects.filter(pk=self.pk, status=self.Status.DRAFT).update(
                status=self.Status.SENT, sent_at=now, updated_at=now
            ):
                self.status, self.sent_at, self.updated_at = self.Status.SENT, now, now
            else:
                self.refresh_from_db(fields=["status", "sent_at", "updated_at"])

    @classmethod
    def mark_sent_many(cls, invoices: Sequence[Invoice]) -> None:
        """``mark_sent`` for many invoices with one UPDATE (a pushed chunk); the instances follow the rows."""
        drafts = {inv.pk: inv for inv in invoices if inv.status == cls.Status.DRAFT}
        if not drafts:
            return
        now = timezone.now()
        changed = cls.objects.filter(pk__in=list(drafts), status=cls.Status.DRAFT).update(
            status=cls.Status.SENT, sent_at=now, updated_at=now)
        if changed == len(drafts):
            for inv in drafts.values():
                inv.status, inv.sent_at, inv.updated_at = cls.Status.SENT, now, now
            return
        # Some changed under us since they were loaded: take what the rows hold now.
        for pk, status, sent_at, updated_at in cls.objects.filter(pk__in=list(drafts)).values_list(
                "pk", "status", "sent_at", "updated_at"):
            drafts[pk].status, drafts[pk].sent_at, drafts[pk].updated_at = status, sent_at, updated_at

    def void(self) -> None:
        """Void the invoice. A sent invoice's void is pushed to QuickBooks by the sync."""
        if self.status == self.Status.VOID:
            return
        self.status = self.Status.VOID
        self.voided_at = timezone.now()
        self.amount_due = Decimal("0.00")
        self.save(update_fields=["status", "voided_at", "amount_due", "updated_at"])
        from batchly.signals import invoice_voided

        invoice_voided.send(sender=Invoice, invoice=self)

    def correct(self, *, number: str | None = None) -> Invoice:
        """Void this invoice and return a new draft copy linked to it, to be edited and sent."""
        with transaction.atomic():
            self.void()
            replacement = Invoice.objects.create(
                organization_id=self.organization_id,
                number=number or Invoice.next_number(self.organization_id),
                customer_id=self.customer_id,
                replaces=self,
                issue_date=timezone.localdate(),
                due_date=self.due_date,
                memo=self.memo,
            )
            InvoiceLine.objects.bulk_create(
                InvoiceLine(invoice=replacement, item_id=line.item_id, description=line.description,
                            quantity=line.quantity, unit_price=line.unit_price, position=line.position)
                for line in self.lines.all()
            )
            replacement.recalculate()
            return replacement


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="+")
    description = models.CharField(max_length=4000, blank=True)
    quantity = models.DecimalField(max_digits=14, decimal_places=4, validators=[MinValueValidator(Decimal("0"))])
    unit_price = models.DecimalField(max_digits=14, decimal_places=4)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.item}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self._refuse_if_locked()
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse_if_locked()
        return super().delete(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        invoice = _related(self, "invoice")
        if invoice is not None:
            same_organization(invoice, item=_related(self, "item"))

    @property
    def amount(self) -> Decimal:
        return money(Decimal(self.quantity) * Decimal(self.unit_price))

    def _refuse_if_locked(self) -> None:
        status = Invoice.objects.filter(pk=self.invoice_id).values_list("status", flat=True).first()
        if status in (Invoice.Status.SENT, Invoice.Status.VOID):
            raise InvoiceError(
                f"Invoice {self.invoice.number} was {status}; its lines cannot change. "
                "Void it and issue a corrected invoice instead."
            )


def _related(row: models.Model, name: str) -> Any:
    """The row a foreign key points at (also one not saved yet, as an inline's parent in the admin), or ``None``."""
    field = row._meta.get_field(name)
    if not isinstance(field, models.ForeignKey):
        raise TypeError(f"{type(row).__name__}.{name} is not a foreign key")
    if field.is_cached(row):
        return field.get_cached_value(row)
    if getattr(row, field.attname) is None:
        return None
    return getattr(row, name)
