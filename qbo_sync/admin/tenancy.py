"""Which organizations an admin user may see and act on, and a ModelAdmin base that scopes rows to them.

The rule itself (tenancy and permissions) lives in :mod:`qbo_sync.permissions`; this module applies it to
ModelAdmins.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.auth import get_permission_codename
from django.core.exceptions import ValidationError
from django.db import connection, models
from django.http import Http404, HttpRequest, HttpResponseBadRequest

from qbo_sync.permissions import Action, allowed_anywhere, visible_organization_ids


def may_see_organization(request: HttpRequest, organization_id: Any) -> bool:
    visible = visible_organization_ids(request)
    return visible is None or (organization_id is not None and int(organization_id) in visible)


def has_model_perm(request: HttpRequest, model: type[models.Model], action: str) -> bool:
    """``request.user`` holds the ``action`` (add/change/delete/view) permission of ``model``."""
    opts = model._meta
    return request.user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")


def may(request: HttpRequest, action: Action) -> bool:
    """The user may take ``action`` in at least one organization (whether a button or an action is offered)."""
    return allowed_anywhere(request.user, action)


__all__ = ["OrganizationScopedAdmin", "ReadOnlyAdminMixin", "SafeActionsMixin", "has_model_perm", "may",
           "may_see_organization", "valid_selection", "visible_organization_ids"]


def valid_selection(modeladmin: admin.ModelAdmin, request: HttpRequest) -> bool:
    """Every id an admin action was posted with can be the model's primary key (Django's admin passes them to the
    database as they come: a NUL byte or an out-of-range number there is a 500)."""
    field = modeladmin.opts.pk
    low, high = connection.ops.integer_field_range(field.get_internal_type())
    for raw in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
        try:
            value = field.to_python(raw)
        except (ValidationError, ValueError, TypeError, OverflowError):
            return False
        if isinstance(value, str) and "\x00" in value:
            return False
        if isinstance(value, int) and ((low is not None and value < low) or (high is not None and value > high)):
            return False
    return True


class SafeActionsMixin:
    """Admin actions posted with ids that cannot be primary keys answer 400 instead of reaching the database."""

    def response_action(self, request: HttpRequest, queryset: models.QuerySet) -> Any:
        if not valid_selection(self, request):  # type: ignore[arg-type]
            return HttpResponseBadRequest("The selection names rows that cannot exist.")
        return super().response_action(request, queryset)  # type: ignore[misc]


class OrganizationScopedAdmin(SafeActionsMixin, admin.ModelAdmin):
    """Staff who are not superusers see (and so can act on) only their organizations' rows.

    Every changelist, change page, action and custom view goes through ``get_queryset``, so a row of another
    organization is invisible: its change page answers as for a row that does not exist, and a custom view 404s.
    Rows without an organization (some log entries) are for superusers only.
    """

    organization_field = "organization"

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        qs = super().get_queryset(request)
        visible = visible_organization_ids(request)
        if visible is None:
            return qs
        return qs.filter(**{f"{self.organization_field}_id__in": visible})

    def get_object_or_404(self, request: HttpRequest, object_id: Any) -> models.Model:
        obj = self.get_object(request, str(object_id))
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} with id {object_id!r} here.")
        return obj


class ReadOnlyAdminMixin:
    """Rows are written by the sync only: no add, change or delete in the admin (viewing needs ``view``)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
