from django.contrib import admin

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

#: The organization filter lists only the organizations of the rows the user may see (a plain "organization" filter
#: would list every tenant's name to staff of one organization).
ORGANIZATION_FILTER = ("organization", admin.RelatedOnlyFieldListFilter)


class TenantAdmin(admin.ModelAdmin):
    """Staff who are not superusers see only their organizations' rows."""

    def get_queryset(self, request):
        return super().get_queryset(request).for_user(request.user)


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "created_at")
    prepopulated_fields = {"slug": ("name",)}
    search_fields = ("name", "slug")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "organization", "role")
    list_filter = ("role", "organization")


@admin.register(Customer)
class CustomerAdmin(QboSyncAdminMixin, TenantAdmin):
    list_display = ("display_name", "company_name", "email", "active", "organization", "updated_at")
    list_filter = ("active", ORGANIZATION_FILTER)
    search_fields = ("display_name", "company_name", "email")


@admin.register(Item)
class ItemAdmin(QboSyncAdminMixin, TenantAdmin):
    list_display = ("name", "sku", "unit_price", "type", "active", "organization")
    list_filter = ("type", "active", ORGANIZATION_FILTER)
    search_fields = ("name", "sku")


class SalesOrderLineInline(admin.TabularInline):
    model = SalesOrderLine
    extra = 0


@admin.register(SalesOrder)
class SalesOrderAdmin(TenantAdmin):
    list_display = ("number", "customer", "status", "delivery_date", "organization")
    list_filter = ("status", ORGANIZATION_FILTER)
    inlines = [SalesOrderLineInline]


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0

    def has_change_permission(self, request, obj=None):
        return obj is None or not obj.is_locked

    has_add_permission = has_delete_permission = has_change_permission


@admin.register(Invoice)
class InvoiceAdmin(QboSyncAdminMixin, TenantAdmin):
    list_display = ("number", "customer", "issue_date", "total", "status", "payment_status", "amount_due")
    list_filter = ("status", "payment_status", ORGANIZATION_FILTER)
    search_fields = ("number", "customer__display_name")
    inlines = [InvoiceLineInline]
    readonly_fields = ("amount_paid", "amount_due", "payment_status", "last_payment_date", "last_payment_id",
                       "sent_at", "voided_at", "status")

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.is_locked:
            return [f.name for f in obj._meta.fields]
        return self.readonly_fields
