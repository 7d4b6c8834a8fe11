"""What a host adds to the ModelAdmin of a synced model: bulk "Sync selected to QuickBooks" / "Pull selected from
QuickBooks" actions (each with a confirmation page that previews every row) and a "QuickBooks" column with each row's
sync state and a link to its QuickBooks record.

Usage (the host's admin.py)::

    from qbo_sync.admin import QboSyncAdminMixin

    @admin.register(Customer)
    class CustomerAdmin(QboSyncAdminMixin, admin.ModelAdmin):
        ...

A ModelAdmin that sets its own ``actions`` keeps these with ``actions = [*QboSyncAdminMixin.actions, ...]``.

Permissions: both actions need the ``start_sync`` action of :mod:`qbo_sync.permissions` (by default
``qbo_sync.add_syncjob``, or what the host's ``PERMISSION_CHECKER`` says); pulling also needs the host model's
``change`` permission (a pull overwrites the host rows). Staff without them do not see the actions. Rows come from
the ModelAdmin's own ``get_queryset`` and must belong to organizations where the user may start a sync; a selection
that reaches outside them is refused as a whole.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from qbo_sync import registry as entities
from qbo_sync.adapters import HostAdapter, registry
from qbo_sync.admin.tenancy import may
from qbo_sync.models import SyncJob
from qbo_sync.permissions import Action, allowed_organization_ids
from qbo_sync.services import status as status_service

#: Entities a selection can be pushed or (targeted) pulled for from the admin.
PUSH_ENTITIES = entities.pushable()
PULL_ENTITIES = entities.targeted_pullable()

STATE_LABELS = {
    "synced": "Synced",
    "pending": "Pending",
    "failed": "Failed",
    "conflict": "Conflict",
    "not_synced": "Not synced",
}
STATE_COLOURS = {
    "synced": "#2e7d32",
    "pending": "#9a6700",
    "failed": "#ba2121",
    "conflict": "#8e24aa",
    "not_synced": "#666",
}

_STATES_ATTR = "_qbo_sync_states"


def job_url(job: SyncJob) -> str:
    """The job's live progress page when the host mounted qbo_sync's URLs, else its admin change page."""
    try:
        return reverse("qbo_sync:job-progress", args=[job.pk])
    except NoReverseMatch:
        return reverse("admin:qbo_sync_syncjob_change", args=[job.pk])


def group_by_organization(adapter: HostAdapter, objects: list[models.Model]) -> dict[int, list[models.Model]]:
    groups: dict[int, list[models.Model]] = defaultdict(list)
    for obj in objects:
        groups[int(adapter.organization_id(obj))].append(obj)
    return dict(sorted(groups.items()))


def check_organizations(request: HttpRequest, organization_ids: Any) -> None:
    """Refuse (403) when any organization is outside those where the user may start a sync."""
    permitted = allowed_organization_ids(request.user, Action.START_SYNC, among=list(organization_ids))
    if permitted is not None and not set(organization_ids) <= permitted:
        raise PermissionDenied("Some of the selected rows belong to organizations you cannot act for.")


class QboSyncAdminMixin:
    """Bulk QuickBooks actions and a sync-state column for the ModelAdmin of a model with a qbo_sync adapter."""

    actions = ["qbo_push_selected", "qbo_pull_selected"]
    #: Set to False to leave the "QuickBooks" column out of ``list_display``.
    qbo_state_column = True

    # --- which entity -----------------------------------------------------------------------------------------

    def qbo_adapter(self) -> HostAdapter | None:
        return registry.for_model(self.model)

    def qbo_entity(self) -> str | None:
        adapter = self.qbo_adapter()
        return adapter.entity if adapter is not None else None

    # --- permissions (``@admin.action(permissions=[...])`` calls these) ---------------------------------------

    def has_qbo_push_permission(self, request: HttpRequest) -> bool:
        return (self.qbo_entity() in PUSH_ENTITIES and may(request, Action.START_SYNC)
                and self.has_view_or_change_permission(request))

    def has_qbo_pull_permission(self, request: HttpRequest) -> bool:
        return (self.qbo_entity() in PULL_ENTITIES and may(request, Action.START_SYNC)
                and self.has_change_permission(request))

    # --- actions ----------------------------------------------------------------------------------------------

    @admin.action(permissions=["qbo_push"], description="Sync selected to QuickBooks")
    def qbo_push_selected(self, request: HttpRequest, queryset: models.QuerySet) -> HttpResponse | None:
        from qbo_sync.admin.views import push_selected

        return push_selected(self, request, queryset)

    @admin.action(permissions=["qbo_pull"], description="Pull selected from QuickBooks")
    def qbo_pull_selected(self, request: HttpRequest, queryset: models.QuerySet) -> HttpResponse | None:
        from qbo_sync.admin.views import pull_selected

        return pull_selected(self, request, queryset)

    # --- the "QuickBooks" column ------------------------------------------------------------------------------

    def get_list_display(self, request: HttpRequest) -> Any:
        columns = list(super().get_list_display(request))  # type: ignore[misc]
        if self.qbo_state_column and self.qbo_entity() and "qbo_state" not in columns:
            columns.append(self._qbo_state_column(request))
        return columns

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)  # type: ignore[misc]
        if self.qbo_state_column and self.qbo_entity():
            setattr(request, _STATES_ATTR, self.qbo_states(list(changelist.result_list)))
        return changelist

    def qbo_states(self, objects: list[models.Model]) -> dict[str, dict[str, Any]]:
        """Badges for a page of rows: ``states_for`` once per organization on the page (a constant number of
        queries for a page of one organization, whatever its size)."""
        adapter = self.qbo_adapter()
        if adapter is None or not objects:
            return {}
        states: dict[str, dict[str, Any]] = {}
        for org_id, rows in group_by_organization(adapter, objects).items():
            states.update(status_service.states_for(org_id, adapter.entity, [str(o.pk) for o in rows]))
        return states

    def _qbo_state_column(self, request: HttpRequest) -> Any:
        admin_self = self

        @admin.display(description="QuickBooks")
        def qbo_state(obj: models.Model) -> str:
            states = getattr(request, _STATES_ATTR, None)
            if states is None or str(obj.pk) not in states:  # outside a changelist page: one row at a time
                states = admin_self.qbo_states([obj])
            return render_state(states.get(str(obj.pk)))

        return qbo_state


def render_state(state: dict[str, Any] | None) -> str:
    """One row's badge: the state, the failure message, and a link to the QuickBooks record."""
    if not state:
        return format_html('<span style="color:#666">{}</span>', STATE_LABELS["not_synced"])
    name = state.get("state") or "not_synced"
    badge = format_html('<strong class="qbo-state qbo-state-{}" style="color:{}">{}</strong>', name,
                        STATE_COLOURS.get(name, "#666"), STATE_LABELS.get(name, name))
    parts = [badge]
    if name == "failed" and state.get("message"):
        message = str(state["message"])
        short = message if len(message) <= 120 else message[:117] + "…"
        parts.append(format_html('<br><small class="qbo-error" title="{}">{}</small>', message, short))
    if state.get("qbo_id"):
        url = state.get("qbo_url") or ""
        if url:
            parts.append(format_html(' <a class="qbo-link" href="{}" target="_blank" rel="noopener">QBO #{}</a>',
                                     url, state["qbo_id"]))
        else:
            parts.append(format_html(" QBO #{}", state["qbo_id"]))
    return format_html("{}" * len(parts), *parts)
