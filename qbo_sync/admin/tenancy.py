"""Which organizations an admin user may see and act on, and a ModelAdmin base that scopes rows to them.

The host says who sees what through ``QBO_SYNC["ORGANIZATION_RESOLVER"]`` (a dotted path to ``f(user)`` returning
organizations or their ids). Superusers see everything; without a resolver other staff see nothing.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.db import models
from django.http import Http404, HttpRequest
from django.utils.module_loading import import_string

from qbo_sync.conf import qbo_settings

_CACHE_ATTR = "_qbo_sync_visible_organizations"


def visible_organization_ids(request_or_user: Any) -> set[int] | None:
    """The ids of the organizations the user may see; ``None`` means all of them (a superuser).

    Given a request, the answer is cached on it (one resolver call per request).
    """
    request = request_or_user if isinstance(request_or_user, HttpRequest) else None
    if request is not None and hasattr(request, _CACHE_ATTR):
        return getattr(request, _CACHE_ATTR)
    user = request.user if request is not None else request_or_user
    result: set[int] | None
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        result = set()
    elif user.is_superuser:
        result = None
    else:
        resolver = qbo_settings.ORGANIZATION_RESOLVER
        if not resolver:
            result = set()
        else:
            func = import_string(resolver) if isinstance(resolver, str) else resolver
            visible = func(user)
            if isinstance(visible, models.QuerySet) and not visible._fields:
                visible = visible.values_list("pk", flat=True)
            result = {int(getattr(o, "pk", o)) for o in visible}
    if request is not None:
        setattr(request, _CACHE_ATTR, result)
    return result


def may_see_organization(request: HttpRequest, organization_id: Any) -> bool:
    visible = visible_organization_ids(request)
    return visible is None or (organization_id is not None and int(organization_id) in visible)


def has_model_perm(request: HttpRequest, model: type[models.Model], action: str) -> bool:
    """``request.user`` holds the ``action`` (add/change/delete/view) permission of ``model``."""
    opts = model._meta
    return request.user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")


class OrganizationScopedAdmin(admin.ModelAdmin):
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
