"""Who may see what: the caller's organizations, and the one a request is about.

The rule (documented on every operation of the schema):

* The organizations a user may see come from ``QBO_SYNC["ORGANIZATION_RESOLVER"]`` (a dotted path to
  ``f(user) -> queryset or list of organizations/ids``). Without a resolver only superusers see anything.
* A request names one of them with the ``org`` query parameter or the ``X-Organization`` header: the value of its
  ``ORGANIZATION_LOOKUP_FIELD`` (default its id). Naming one the caller cannot see answers 404, exactly like naming
  one that does not exist.
* Without either, lists and single-object lookups cover every organization the caller may see, and operations that
  act on one organization (``sync``, ``progress``, ``connection``, ``entities``) use the caller's only organization;
  a caller with several must choose (400, field ``org``).

Every query is filtered by these organizations, so another organization's job or conflict id answers 404, not 403.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db import models
from django.utils.module_loading import import_string
from rest_framework import exceptions, permissions
from rest_framework.request import Request

from qbo_sync import organizations
from qbo_sync.conf import qbo_settings
from qbo_sync.models.base import ORGANIZATION_MODEL

ORG_QUERY_PARAM = "org"
ORG_HEADER = "X-Organization"
ORG_RULE = (
    "The organization (its `ORGANIZATION_LOOKUP_FIELD` value, default its id), as the `org` query parameter or "
    "the `X-Organization` header. Optional when "
    "the caller belongs to one organization; lists and lookups without it cover all the caller's organizations. "
    "An organization the caller cannot see answers 404."
)


def organization_model() -> type[models.Model]:
    return apps.get_model(ORGANIZATION_MODEL)


def visible_organizations(user: Any) -> models.QuerySet:
    """The organizations ``user`` may see, as a queryset (usable as a subquery: no extra round trip)."""
    model = organization_model()
    manager = model._default_manager
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", True):
        return manager.none()
    resolver = qbo_settings.ORGANIZATION_RESOLVER
    if not resolver:
        return manager.all() if user.is_superuser else manager.none()
    func = import_string(resolver) if isinstance(resolver, str) else resolver
    result = func(user)
    if isinstance(result, models.QuerySet) and result.model is model:
        return result
    return manager.filter(pk__in=[getattr(o, "pk", o) for o in result])


def organization_ref(request: Request) -> str:
    """The organization the request names (query parameter first, then header), or ``""``."""
    query = (request.query_params.get(ORG_QUERY_PARAM) or "").strip()
    header = (request.headers.get(ORG_HEADER) or "").strip()
    if query and header and query != header:
        raise exceptions.ValidationError({ORG_QUERY_PARAM: [f"The `org` parameter and the {ORG_HEADER} header "
                                                            "name different organizations."]})
    return query or header


def find_organization(visible: models.QuerySet, ref: str) -> models.Model | None:
    """The organization among ``visible`` named ``ref`` (its ``ORGANIZATION_LOOKUP_FIELD`` value)."""
    return organizations.find_organization(visible, ref)


class OrganizationScope:
    """The organizations one request covers (computed once per request, cached on it)."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.visible = visible_organizations(request.user)
        self.ref = organization_ref(request)
        self.named: models.Model | None = None
        if self.ref:
            self.named = find_organization(self.visible, self.ref)
            if self.named is None:
                raise exceptions.NotFound(f"No organization {self.ref!r} that you can see.")

    @classmethod
    def of(cls, request: Request) -> OrganizationScope:
        scope = getattr(request, "_qbo_scope", None)
        if scope is None:
            scope = cls(request)
            request._qbo_scope = scope
        return scope

    def filter(self, queryset: models.QuerySet, field: str = "organization") -> models.QuerySet:
        """``queryset`` limited to the named organization, or to all the caller's organizations."""
        if self.named is not None:
            return queryset.filter(**{f"{field}_id": self.named.pk})
        return queryset.filter(**{f"{field}_id__in": self.visible.values("pk")})

    def single(self) -> models.Model:
        """The one organization an action is about: the named one, or the caller's only one."""
        if self.named is not None:
            return self.named
        candidates = list(self.visible[:2])
        if not candidates:
            raise exceptions.PermissionDenied("You are not a member of any organization.")
        if len(candidates) > 1:
            raise exceptions.ValidationError({ORG_QUERY_PARAM: [
                f"You belong to several organizations: choose one with ?{ORG_QUERY_PARAM}=<organization> or the "
                f"{ORG_HEADER} header."]})
        return candidates[0]


class IsSyncUser(permissions.BasePermission):
    """An authenticated, active user. What they see is limited by :class:`OrganizationScope`, not here."""

    message = "Authentication credentials were not provided."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active)
