"""Who may see what: the caller's organizations, and the one a request is about.

The rule (documented on every operation of the schema):

* The organizations a user may see, and what the user may do in each, are decided by :mod:`qbo_sync.permissions`
  (the ``ORGANIZATION_RESOLVER`` and the ``view`` action): the API only applies that rule. An organization seen
  without the ``view`` permission is treated as unseen.
* A request names one of them with the ``org`` query parameter or the ``X-Organization`` header: the value of its
  ``ORGANIZATION_LOOKUP_FIELD`` (default its id). Naming one the caller cannot see answers 404, exactly like naming
  one that does not exist.
* Without either, lists and single-object lookups cover every organization the caller may see, and operations that
  act on one organization (``sync``, ``progress``, ``connection``, ``entities``) use the caller's only organization;
  a caller with several must choose (400, field ``org``).

Every query is filtered by these organizations, so another organization's job or conflict id answers 404, not 403.
Changes (start a sync, cancel, resolve) need their own action in the object's organization, else 403.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.db import models
from rest_framework import exceptions, permissions
from rest_framework.request import Request

from qbo_sync import organizations
from qbo_sync.permissions import (
    Action,
    allowed_in_visible,
    allowed_organization_ids,
    organization_model,
    visible_organizations,
)

ORG_QUERY_PARAM = "org"
ORG_HEADER = "X-Organization"
ORG_RULE = (
    "The organization (its `ORGANIZATION_LOOKUP_FIELD` value, default its id), as the `org` query parameter or "
    "the `X-Organization` header. Optional when "
    "the caller belongs to one organization; lists and lookups without it cover all the caller's organizations. "
    "An organization the caller cannot see answers 404."
)


def viewable_organizations(user: Any) -> models.QuerySet:
    """The organizations ``user`` may see and holds the ``view`` action in."""
    ids = allowed_organization_ids(user, Action.VIEW)
    return visible_organizations(user) if ids is None else organization_model()._default_manager.filter(pk__in=ids)


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
        self.ref = organization_ref(request)
        self.named: models.Model | None = None
        if self.ref:
            self.named = find_organization(self.visible, self.ref)
            if self.named is None:
                raise exceptions.NotFound(f"No organization {self.ref!r} that you can see.")

    @cached_property
    def visible(self) -> models.QuerySet:
        """The caller's organizations holding the ``view`` action (the permission checker asked for each of them,
        so it is only computed when a request needs the whole list)."""
        return viewable_organizations(self.request.user)

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

    def get(self, queryset: models.QuerySet, field: str = "organization", **lookup: Any) -> models.Model | None:
        """The one object of ``queryset`` matching ``lookup`` in the caller's organizations, or ``None`` (unseen and
        missing alike): what a polled detail asks for.

        Without a named organization this does not list the caller's organizations: the object is read with the
        tenancy rule as a subquery, then the ``view`` action is checked in its own organization only (the checker
        asked once, not once per organization; ``field`` must be select_related). Both are read on every call,
        nothing is cached across requests, so a member removed or a role changed is refused on the next request."""
        if self.named is not None:
            return self.filter(queryset, field).filter(**lookup).first()
        user = self.request.user
        obj = queryset.filter(**{f"{field}_id__in": visible_organizations(user).values("pk")}, **lookup).first()
        if obj is None or not allowed_in_visible(user, Action.VIEW, getattr(obj, field)):
            return None
        return obj

    def single(self) -> models.Model:
        """The one organization an action is about: the named one, or the caller's only one."""
        if self.named is not None:
            return self.named
        candidates = list(self.visible[:2])
        if not candidates:
            raise exceptions.PermissionDenied("You are not a member of any organization whose sync you may view.")
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


class AuthenticatedOutsideDebug(permissions.BasePermission):
    """For the API's schema and docs pages: open while DEBUG is on; otherwise an authenticated, active user.

    The schema names every endpoint, parameter and error of the sync: useful to an attacker mapping the surface, and
    no anonymous caller of a deployment needs it. A host sets it as drf-spectacular's ``SERVE_PERMISSIONS``.
    """

    message = "Authentication credentials were not provided."

    def has_permission(self, request: Request, view: Any) -> bool:
        from django.conf import settings

        if settings.DEBUG:
            return True
        user = request.user
        return bool(user and user.is_authenticated and user.is_active)
