"""Who may do what, in which organization: the one rule every surface asks (API, pages, admin, CLI, tasks).

Two questions, always in this order:

1. **Tenancy** — which organizations may the user see? :func:`visible_organizations`. Inactive or anonymous users
   see none, superusers all of them; everyone else sees what ``QBO_SYNC["ORGANIZATION_RESOLVER"]`` (a dotted path to
   ``f(user) -> queryset or list of organizations/ids``) returns, or none without a resolver.
2. **Permission** — may the user take this :class:`Action` in that organization? :func:`allowed`. Inactive users may
   do nothing and superusers everything; for an organization the user cannot see the answer is no. Otherwise
   ``QBO_SYNC["PERMISSION_CHECKER"]`` (a dotted path to ``f(user, action, organization) -> bool``) decides when it is
   set, so a host maps the actions to its own roles; without it the user needs the Django model permission of
   :data:`DEFAULT_PERMISSIONS` (granted in the admin, per user or group).

System actors (the command line, schedules, webhooks: :meth:`Actor.system`) act for every organization; they still
pass through :func:`require`, so each change they make is checked and recorded the same way.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core.exceptions import PermissionDenied
from django.db import models

from qbo_sync.conf import qbo_settings


class Action(enum.StrEnum):
    """What a person (or a system actor) may do with the sync of one organization."""

    VIEW = "view"  # jobs, progress, conflicts, connection status, the audit log
    START_SYNC = "start_sync"  # push or pull (a job, or selected rows from the host's admin)
    OPERATE = "operate"  # cancel a job, retry or cancel queue items, repair from reconciliation, pause, resume
    RESOLVE = "resolve"  # settle a conflict (keep a side or an edited value)
    MANAGE_CONNECTION = "manage_connection"  # connect, reconnect, disconnect QuickBooks


#: The Django model permission each action needs when the host configures no ``PERMISSION_CHECKER``.
DEFAULT_PERMISSIONS: dict[Action, str] = {
    Action.VIEW: "qbo_sync.view_syncjob",
    Action.START_SYNC: "qbo_sync.add_syncjob",
    Action.OPERATE: "qbo_sync.change_syncjob",
    Action.RESOLVE: "qbo_sync.change_conflict",
    Action.MANAGE_CONNECTION: "qbo_sync.change_qboconnection",
}

#: How a change reached qbo_sync (recorded with it in the audit log).
SURFACES = ("admin", "api", "page", "cli", "schedule", "webhook")


class QboPermissionDenied(PermissionDenied):
    """The actor may not take this action here (Django and DRF answer 403)."""


@dataclass(frozen=True)
class Actor:
    """Who asks for a change, through which surface, from which address.

    ``user`` is ``None`` for a system actor (``cli``, ``schedule``, ``webhook``), which is allowed every action.
    """

    user: Any
    surface: str
    address: str = ""

    @classmethod
    def system(cls, surface: str) -> Actor:
        return cls(None, surface)

    @classmethod
    def from_request(cls, request: Any, surface: str) -> Actor:
        return cls(getattr(request, "user", None), surface, client_address(request))

    @property
    def is_system(self) -> bool:
        return self.user is None

    @property
    def label(self) -> str:
        if self.user is None:
            return f"system ({self.surface})"
        return str(self.user.get_username() if hasattr(self.user, "get_username") else self.user)


def client_address(request: Any) -> str:
    """The address a request came from: ``REMOTE_ADDR``, never a client-supplied header.

    Behind a proxy, set ``QBO_SYNC["CLIENT_ADDRESS_HEADER"]`` to the ``request.META`` key the proxy sets (e.g.
    ``"HTTP_X_REAL_IP"``); only then is that header trusted (its last comma-separated value, the proxy's own).
    """
    meta = getattr(request, "META", {}) or {}
    header = qbo_settings.CLIENT_ADDRESS_HEADER
    if header and meta.get(header):
        return str(meta[header]).split(",")[-1].strip()[:45]
    return str(meta.get("REMOTE_ADDR") or "")[:45]


# --- tenancy ----------------------------------------------------------------------------------------------------


def organization_model() -> type[models.Model]:
    from qbo_sync.models.base import ORGANIZATION_MODEL

    return apps.get_model(ORGANIZATION_MODEL)


def _active(user: Any) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and getattr(user, "is_active", False))


def visible_organizations(user: Any) -> models.QuerySet:
    """The organizations ``user`` may see, as a queryset (usable as a subquery: no extra round trip)."""
    manager = organization_model()._default_manager
    if not _active(user):
        return manager.none()
    if user.is_superuser:
        return manager.all()
    resolver = qbo_settings.ORGANIZATION_RESOLVER  # imported by qbo_settings
    if resolver is None:
        return manager.none()
    result = resolver(user)
    if isinstance(result, models.QuerySet) and result.model is manager.model:
        return result
    # A values()/values_list() queryset (its _fields, which django-stubs does not declare): usable as pk__in.
    if isinstance(result, models.QuerySet) and result._fields:  # type: ignore[attr-defined]
        return manager.filter(pk__in=result)
    return manager.filter(pk__in=[getattr(o, "pk", o) for o in result])


_CACHE_ATTR = "_qbo_sync_visible_organizations"


def visible_organization_ids(request_or_user: Any) -> set[int] | None:
    """The ids of the organizations the user may see; ``None`` means all of them (a superuser).

    Given a request, the answer is cached on it (one resolver call per request).
    """
    request = request_or_user if hasattr(request_or_user, "META") else None
    if request is not None and hasattr(request, _CACHE_ATTR):
        return getattr(request, _CACHE_ATTR)
    user = request.user if request is not None else request_or_user
    result: set[int] | None
    if _active(user) and user.is_superuser:
        result = None
    else:
        result = set(visible_organizations(user).values_list("pk", flat=True))
    if request is not None:
        setattr(request, _CACHE_ATTR, result)
    return result


# --- permission -------------------------------------------------------------------------------------------------


def has_default_permission(user: Any, action: Action | str) -> bool:
    """The default rule: the Django model permission of :data:`DEFAULT_PERMISSIONS` (a host's checker may grant on
    top of it by calling this)."""
    return bool(_active(user) and user.has_perm(DEFAULT_PERMISSIONS[Action(action)]))


def _checker() -> Any:
    return qbo_settings.PERMISSION_CHECKER  # the imported callable, or None


def _org_pk(organization: Any) -> Any:
    return getattr(organization, "pk", organization)


def _as_organization(organization: Any) -> Any:
    if isinstance(organization, models.Model):
        return organization
    return organization_model()._default_manager.filter(pk=organization).first()


def allowed(actor_or_user: Any, action: Action | str, organization: Any) -> bool:
    """May this actor (or user) take ``action`` in ``organization`` (an instance or its pk)?"""
    action = Action(action)
    if isinstance(actor_or_user, Actor):
        if actor_or_user.is_system:
            return True
        user = actor_or_user.user
    else:
        user = actor_or_user
    if not _active(user):
        return False
    if user.is_superuser:
        return True
    if organization is None:
        return False
    if not visible_organizations(user).filter(pk=_org_pk(organization)).exists():
        return False
    return allowed_in_visible(user, action, organization)


def allowed_in_visible(user: Any, action: Action | str, organization: Any) -> bool:
    """:func:`allowed` for an organization the caller has just read among :func:`visible_organizations` (in the same
    query): only the permission half is asked, saving the visibility query."""
    action = Action(action)
    if not _active(user):
        return False
    if user.is_superuser:
        return True
    checker = _checker()
    if checker is None:
        return has_default_permission(user, action)
    org = _as_organization(organization)
    return org is not None and bool(checker(user, action, org))


def allowed_anywhere(user: Any, action: Action | str) -> bool:
    """May ``user`` take ``action`` in at least one organization? (Whether the admin shows a button at all.)"""
    ids = allowed_organization_ids(user, action)
    return ids is None or bool(ids)


def allowed_organization_ids(user: Any, action: Action | str, among: Iterable[Any] | None = None) -> set[int] | None:
    """The ids of the organizations (of ``among``, or all visible ones) where ``user`` may take ``action``;
    ``None`` means every organization (a superuser)."""
    action = Action(action)
    if not _active(user):
        return set()
    if user.is_superuser:
        return None
    visible = visible_organizations(user)
    if among is not None:
        visible = visible.filter(pk__in=[_org_pk(o) for o in among])
    checker = _checker()
    if checker is None:
        return set(visible.values_list("pk", flat=True)) if has_default_permission(user, action) else set()
    return {org.pk for org in visible if checker(user, action, org)}


def require(actor: Actor | Any, action: Action | str, organization: Any) -> None:
    """Raise :class:`QboPermissionDenied` (403) unless the actor may take ``action`` in ``organization``."""
    if not allowed(actor, action, organization):
        raise QboPermissionDenied(f"You do not have permission to {PHRASES[Action(action)]} for this organization.")


PHRASES: dict[Action, str] = {
    Action.VIEW: "view the QuickBooks sync",
    Action.START_SYNC: "start a QuickBooks sync",
    Action.OPERATE: "cancel or retry sync work",
    Action.RESOLVE: "resolve sync conflicts",
    Action.MANAGE_CONNECTION: "connect or disconnect QuickBooks",
}
