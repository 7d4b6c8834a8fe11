"""Batchly's admin: every page, form and choice is scoped to the organizations of the signed-in user.

One mixin, :class:`TenantAdmin`, holds the whole rule (an adopter copies it as it is):

- list and change pages show only the user's organizations' rows (``get_queryset``);
- every foreign-key choice (the organization, a customer, an item, a sales order ...) lists only rows of those
  organizations (``formfield_for_foreignkey``), on the main form and on its inlines alike;
- a row never moves between organizations: ``organization`` is read-only once the row exists;
- what the choices cannot express (an invoice's customer and its lines' items belong to the invoice's organization)
  is checked by the models' ``clean`` methods, which the admin calls before saving anything.

Superusers see and choose from every organization; the models' ``clean`` still keeps each row within one.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from batchly.models import (
    Customer,
    Invoice,
    InvoiceLine,
    Item,
    Membership,
    Organization,
    SalesOrder,
    SalesOrderLine,
)
from qbo_sync.admin import QboSyncAdminMixin
from qbo_sync.admin.tenancy import SafeActionsMixin

#: The organization filter lists only the organizations of the rows the user may see (a plain "organization" filter
#: would list every tenant's name to staff of one organization).
ORGANIZATION_FILTER = ("organization", admin.RelatedOnlyFieldListFilter)


def organizations_of(user: Any) -> models.QuerySet:
    """The organizations ``user`` works in (all of them for a superuser, none for an inactive user)."""
    if not user.is_authenticated or not user.is_active:
        return Organization.objects.none()
    if user.is_superuser:
        return Organization.objects.all()
    return Organization.objects.filter(memberships__user=user)


def scoped_choices(model: type[models.Model], user: Any) -> models.QuerySet | None:
    """The rows of ``model`` that ``user`` may pick in a form, or ``None`` when the model is not a tenant's."""
    if model is Organization:
        return organizations_of(user)
    if any(f.name == "organization" and f.related_model is Organization for f in model._meta.fields):
        return model._default_manager.filter(organization__in=organizations_of(user))
    return None


class TenantAdmin(SafeActionsMixin):
    """The tenancy rule of an admin page, for ModelAdmins and inlines alike (see the module's docstring).

    (``SafeActionsMixin``, from qbo_sync, answers 400 to an action posted with ids that cannot exist.)
    """

    #: The path from this admin's model to its organization ("" for Organization itself).
    organization_path = "organization"

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        qs = super().get_queryset(request)  # type: ignore[misc]
        if request.user.is_superuser:
            return qs
        field = f"{self.organization_path}__in" if self.organization_path else "pk__in"
        return qs.filter(**{field: organizations_of(request.user)})

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        choices = scoped_choices(db_field.related_model, request.user)
        if choices is not None:
            kwargs["queryset"] = choices
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))  # type: ignore[misc]
        if obj is not None and self.organization_path == "organization" and "organization" not in fields:
            fields.append("organization")
        return fields


class SuperuserManagedAdmin(admin.ModelAdmin):
    """Who works where is decided by a superuser; other staff may only look at their own organizations."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser


@admin.register(Organization)
class OrganizationAdmin(TenantAdmin, SuperuserManagedAdmin):
    organization_path = ""
    list_display = ("name", "slug", "created_at")
    prepopulated_fields = {"slug": ("name",)}
    search_fields = ("name", "slug")


@admin.register(Membership)
class MembershipAdmin(TenantAdmin, SuperuserManagedAdmin):
    list_display = ("user", "organization", "role")
    list_filter = ("role", ORGANIZATION_FILTER)


@admin.register(Customer)
class CustomerAdmin(QboSyncAdminMixin, TenantAdmin, admin.ModelAdmin):
    list_display = ("display_name", "company_name", "email", "taxable", "active", "organization", "updated_at")
    list_filter = ("active", "taxable", ORGANIZATION_FILTER)
    search_fields = ("display_name", "company_name", "email")


@admin.register(Item)
class ItemAdmin(QboSyncAdminMixin, TenantAdmin, admin.ModelAdmin):
    list_display = ("name", "sku", "unit_price", "type", "taxable", "active", "organization")
    list_filter = ("type", "taxable", "active", ORGANIZATION_FILTER)
    search_fields = ("name", "sku")


class SalesOrderLineInline(TenantAdmin, admin.TabularInline):
    model = SalesOrderLine
    organization_path = "order__organization"
    extra = 0


@admin.register(SalesOrder)
class SalesOrderAdmin(TenantAdmin, admin.ModelAdmin):
    list_display = ("number", "customer", "status", "delivery_date", "organization")
    list_filter = ("status", ORGANIZATION_FILTER)
    inlines = [SalesOrderLineInline]


class InvoiceLineInline(TenantAdmin, admin.TabularInline):
    model = InvoiceLine
    organization_path = "invoice__organization"
    extra = 0

    def has_change_permission(self, request, obj=None):
        return obj is None or not obj.is_locked

    has_add_permission = has_delete_permission = has_change_permission


@admin.register(Invoice)
class InvoiceAdmin(QboSyncAdminMixin, TenantAdmin, admin.ModelAdmin):
    list_display = ("number", "customer", "issue_date", "subtotal", "tax_amount", "total", "status", "payment_status",
                    "amount_due")
    list_filter = ("status", "payment_status", ORGANIZATION_FILTER)
    search_fields = ("number", "customer__display_name")
    inlines = [InvoiceLineInline]
    readonly_fields = ("tax_amount", "amount_paid", "amount_credited", "amount_refunded", "amount_due",
                       "payment_status", "last_payment_date", "last_payment_id", "sent_at", "voided_at", "status")

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.is_locked:
            return [f.name for f in obj._meta.fields]
        return super().get_readonly_fields(request, obj)
