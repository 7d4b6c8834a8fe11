"""qbo_sync's own admin: connections, jobs, queue items, conflicts, the sync log and pull cursors.

Rows are written by the sync, so every page here is read-only; what an operator can do goes through actions and
buttons that call ``qbo_sync.services.operations``, each guarded by an action of the one permission rule
(:mod:`qbo_sync.permissions`; by default the Django permission in brackets, or the host's ``PERMISSION_CHECKER``):

- connections: connect / reconnect / disconnect (``manage_connection``: ``change_qboconnection``); tokens are never
  shown;
- jobs: live progress, a link to the progress page, cancel (``operate``: ``change_syncjob``);
- queue items: retry, retry including dead, cancel (``operate``: ``change_syncjob``);
- conflicts: keep the host's value (named by ``QBO_SYNC["HOST_LABEL"]``), keep QuickBooks', edit then keep
  (``resolve``: ``change_conflict``);
- links (``EntityMapping``): read-only, with the last QBO version as QuickBooks sent it, pretty-printed;
- sync log, audit log and pull cursors: read-only, nothing to act on (the logs are append-only: no delete either);
- refused webhook deliveries (counts per reason and minute): read-only, superusers only (no organization's rows).

Staff who are not superusers see only their organizations' rows (``OrganizationScopedAdmin``).
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.functional import lazy
from django.utils.html import format_html

from qbo_sync import registry
from qbo_sync.admin import views
from qbo_sync.admin.actions import job_url
from qbo_sync.admin.tenancy import OrganizationScopedAdmin, ReadOnlyAdminMixin, may
from qbo_sync.conf import host_label
from qbo_sync.exceptions import QboSyncError
from qbo_sync.models import (
    AuditEntry,
    Conflict,
    EntityMapping,
    PullCursor,
    QboConnection,
    QueueItem,
    RefusalCount,
    SyncJob,
    SyncLog,
)
from qbo_sync.permissions import Action, Actor
from qbo_sync.services import operations
from qbo_sync.services.jobs import QboInputError
from qbo_sync.services.progress import annotate_counts, counts_of, job_progress

#: The connection's secrets: never a field, a column, a filter or a search field anywhere in the admin.
TOKEN_FIELDS = ("access_token_encrypted", "refresh_token_encrypted")

ORGANIZATION_FILTER = ("organization", admin.RelatedOnlyFieldListFilter)


class EntityTypeFilter(admin.SimpleListFilter):
    """One choice per registered entity (the entity columns validate against the registry and have no ``choices``).
    The parameter is the one Django's choices filter used, so bookmarked filters keep working."""

    title = "entity type"
    parameter_name = "entity_type__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, name) for name in registry.names()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset.filter(entity_type=value) if value else queryset


def short(text: str, length: int = 80) -> str:
    text = text or ""
    return text if len(text) <= length else text[: length - 1] + "…"


class PauseActionForm(helpers.ActionForm):
    reason = forms.CharField(required=False, max_length=255, label="Reason (to pause)",
                             help_text="Shown on every progress page while the sync is paused.")


class QboReadOnlyAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    list_select_related = ("organization",)
    list_per_page = 50


# --- connections ---------------------------------------------------------------------------------------------------


@admin.register(QboConnection)
class QboConnectionAdmin(QboReadOnlyAdmin):
    list_display = ("organization", "status", "paused", "company_name", "realm_id", "environment",
                    "access_token_expires_at", "refresh_token_expires_at", "last_error_short", "connected_at")
    list_filter = ("status", "environment", ("paused_at", admin.EmptyFieldListFilter))
    search_fields = ("company_name", "realm_id")
    fields = ("organization", "status", "company_name", "realm_id", "environment", "tax_model", "tax_code",
              "paused_at", "pause_reason",
              "paused_by", "access_token_expires_at", "refresh_token_expires_at", "last_refreshed_at", "last_error",
              "last_served_at", "connected_at", "connected_by", "created_at", "updated_at")
    readonly_fields = fields
    exclude = TOKEN_FIELDS
    actions = ["pause_selected", "resume_selected", "disconnect_selected"]
    action_form = PauseActionForm

    @admin.display(description="Paused")
    def paused(self, obj: QboConnection) -> str:
        return f"Paused: {obj.pause_reason}" if obj.paused_at else "—"

    def has_pause_permission(self, request: HttpRequest) -> bool:
        return may(request, Action.OPERATE)

    @admin.action(permissions=["pause"], description="Pause sync of selected (type the reason below)")
    def pause_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        reason = request.POST.get("reason", "")
        actor = Actor.from_request(request, "admin")
        try:
            for connection in queryset:
                operations.pause(actor, connection.organization_id, reason)
                self.log_change(request, connection, f"Sync paused: {reason}")
        except QboInputError as exc:
            messages.error(request, str(exc))
            return
        messages.success(request, f"Paused {queryset.count()} organization(s): work queues, nothing is sent or "
                                  f"pulled until resumed.")

    @admin.action(permissions=["pause"], description="Resume sync of selected")
    def resume_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        actor = Actor.from_request(request, "admin")
        for connection in queryset.exclude(paused_at=None):
            operations.resume(actor, connection.organization_id)
            self.log_change(request, connection, "Sync resumed")
        messages.success(request, "Resumed the selected organization(s).")
    change_form_template = "qbo_sync/admin/connection_change_form.html"
    change_list_template = "qbo_sync/admin/connection_change_list.html"

    @admin.display(description="Last error")
    def last_error_short(self, obj: QboConnection) -> str:
        return short(obj.last_error)

    def has_manage_permission(self, request: HttpRequest) -> bool:
        return may(request, Action.MANAGE_CONNECTION)

    def get_urls(self) -> list:
        wrap = self.admin_site.admin_view
        return [
            path("connect/", wrap(lambda r: views.connect_view(self, r)), name="qbo_sync_qboconnection_connect"),
            path("<path:object_id>/reconnect/", wrap(lambda r, object_id: views.reconnect_view(self, r, object_id)),
                 name="qbo_sync_qboconnection_reconnect"),
            path("<path:object_id>/disconnect/",
                 wrap(lambda r, object_id: views.disconnect_view(self, r, object_id)),
                 name="qbo_sync_qboconnection_disconnect"),
            *super().get_urls(),
        ]

    def changeform_view(self, request: HttpRequest, object_id: Any = None, form_url: str = "",
                        extra_context: dict | None = None) -> HttpResponse:
        extra = {**(extra_context or {}), "can_manage": self.has_manage_permission(request)}
        return super().changeform_view(request, object_id, form_url, extra)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        extra = {**(extra_context or {}), "can_manage": self.has_manage_permission(request)}
        return super().changelist_view(request, extra)

    @admin.action(permissions=["manage"], description="Disconnect selected from QuickBooks")
    def disconnect_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        connections = list(queryset.exclude(status=QboConnection.Status.DISCONNECTED))
        if not connections:
            messages.info(request, "None of the selected organizations is connected.")
            return None
        if request.POST.get("post") == "yes":
            for connection in connections:
                operations.disconnect(Actor.from_request(request, "admin"), connection.organization)
                self.log_change(request, connection, "Disconnected from QuickBooks")
            messages.success(request, f"Disconnected {len(connections)} organization(s) from QuickBooks.")
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Disconnect from QuickBooks?",
            "subtitle": None,
            "opts": self.opts,
            "mode": "disconnect_many",
            "connections": connections,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "qbo_sync/admin/connection_confirm.html", context)


# --- jobs ----------------------------------------------------------------------------------------------------------

@admin.register(SyncJob)
class SyncJobAdmin(QboReadOnlyAdmin):
    list_display = ("id", "organization", "kind", "entity_type", "state", "progress", "description", "started_by",
                    "created_at", "finished_at")
    list_display_links = ("id", "description")
    list_filter = ("state", "kind", EntityTypeFilter, ORGANIZATION_FILTER)
    list_select_related = ("organization", "started_by")
    search_fields = ("description",)
    date_hierarchy = "created_at"
    fields = ("organization", "kind", "entity_type", "state", "description", "live_progress", "progress_page",
              "queue_items", "options", "total", "started_by", "created_at", "started_at", "finished_at")
    readonly_fields = fields
    actions = ["cancel_jobs"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # The list's progress column: counts of every job on the page in the changelist's own query.
        return annotate_counts(super().get_queryset(request))

    @admin.display(description="Progress")
    def progress(self, obj: SyncJob) -> str:
        counts = counts_of(obj)
        text = format_html("{}/{} ({}%)", counts.done, counts.total, counts.percent)
        if counts.failures:
            text = format_html('{} <span style="color:#ba2121">{} failed</span>', text, counts.failures)
        return text

    @admin.display(description="Live progress")
    def live_progress(self, obj: SyncJob) -> str:
        p = job_progress(obj)
        eta = "—" if p.eta_seconds is None else f"{p.eta_seconds:.0f} s"
        c = p.counts
        rows = [("State", p.shown_state), ("Done", f"{p.done} of {p.total} ({p.percent}%)"),
                ("Pending", c.pending), ("Processing", c.processing), ("Completed", c.completed),
                ("Failed", c.failed), ("Dead", c.dead), ("Cancelled", c.cancelled),
                ("Rate", f"{p.rate_per_minute} per minute"), ("ETA", eta),
                ("Slow because", p.why_slow or "—")]
        body = format_html("".join("<tr><th>{}</th><td>{}</td></tr>" for _ in rows),
                           *[x for row in rows for x in row])
        return format_html('<table class="qbo-job-progress">{}</table>', body)

    @admin.display(description="Progress page")
    def progress_page(self, obj: SyncJob) -> str:
        url = job_url(obj)
        if url == reverse("admin:qbo_sync_syncjob_change", args=[obj.pk]):
            return "—"
        return format_html('<a href="{}">Watch this job live</a>', url)

    @admin.display(description="Queue items")
    def queue_items(self, obj: SyncJob) -> str:
        url = reverse("admin:qbo_sync_queueitem_changelist")
        return format_html('<a href="{}?job__id__exact={}">All items</a> · '
                           '<a href="{}?job__id__exact={}&amp;status__exact=failed">failed</a> · '
                           '<a href="{}?job__id__exact={}&amp;status__exact=dead">dead</a>',
                           url, obj.pk, url, obj.pk, url, obj.pk)

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return may(request, Action.OPERATE)

    @admin.action(permissions=["cancel"], description="Cancel selected jobs")
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet) -> None:
        jobs = [job for job in queryset if not job.is_finished]
        actor = Actor.from_request(request, "admin")
        items = sum(operations.cancel_job(actor, job) for job in jobs)
        for job in jobs:
            self.log_change(request, job, "Cancelled")
        skipped = queryset.count() - len(jobs)
        messages.success(request, f"Cancelled {len(jobs)} job(s) ({items} pending item(s))."
                         + (f" {skipped} had already finished." if skipped else ""))


# --- queue items ---------------------------------------------------------------------------------------------------


@admin.register(QueueItem)
class QueueItemAdmin(QboReadOnlyAdmin):
    list_display = ("id", "organization", "entity_type", "object_id", "qbo_id", "operation", "status", "attempts",
                    "next_attempt_at", "error", "job_link", "updated_at")
    list_filter = ("status", EntityTypeFilter, "operation", ORGANIZATION_FILTER, "priority")
    list_select_related = ("organization", "job")
    search_fields = ("object_id", "qbo_id", "last_error", "error_code")
    readonly_fields = [f.name for f in QueueItem._meta.fields]
    actions = ["retry_failed", "retry_including_dead", "cancel_pending"]

    @admin.display(description="Last error")
    def error(self, obj: QueueItem) -> str:
        return format_html('<span title="{}">{}</span>', obj.last_error, short(obj.last_error)) if obj.last_error \
            else ""

    @admin.display(description="Job", ordering="job")
    def job_link(self, obj: QueueItem) -> str:
        if not obj.job_id:
            return "real-time"
        return format_html('<a href="{}">#{}</a>', reverse("admin:qbo_sync_syncjob_change", args=[obj.job_id]),
                           obj.job_id)

    def has_operate_permission(self, request: HttpRequest) -> bool:
        return may(request, Action.OPERATE)

    @staticmethod
    def _plain(queryset: QuerySet) -> QuerySet:
        # The changelist's queryset joins the nullable job (list_select_related); PostgreSQL refuses the services'
        # SELECT ... FOR UPDATE over such an outer join.
        return queryset.select_related(None)

    @admin.action(permissions=["operate"], description="Retry selected failed items")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = operations.retry_items(Actor.from_request(request, "admin"), self._plain(queryset))
        messages.success(request, f"Requeued {count} failed item(s).")

    @admin.action(permissions=["operate"], description="Retry selected failed and dead items")
    def retry_including_dead(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = operations.retry_items(Actor.from_request(request, "admin"), self._plain(queryset),
                                       include_dead=True)
        messages.success(request, f"Requeued {count} failed or dead item(s).")

    @admin.action(permissions=["operate"], description="Cancel selected pending items")
    def cancel_pending(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = operations.cancel_items(Actor.from_request(request, "admin"), self._plain(queryset))
        messages.success(request, f"Cancelled {count} pending item(s).")


# --- conflicts -----------------------------------------------------------------------------------------------------


@admin.register(Conflict)
class ConflictAdmin(QboReadOnlyAdmin):
    list_display = ("id", "organization", "entity_type", "record", "field", "base", "host", "quickbooks", "rule",
                    "state", "winner", "created_at")
    list_filter = ("state", EntityTypeFilter, "rule", ORGANIZATION_FILTER)
    list_select_related = ("organization", "mapping")
    search_fields = ("field", "mapping__object_id", "mapping__qbo_id")
    fields = ("organization", "entity_type", "record", "field", "values_side_by_side", "rule", "state", "winner",
              "resolved_value", "resolved_by", "resolved_at", "created_at")
    readonly_fields = fields
    actions = ["keep_host", "keep_quickbooks"]
    change_form_template = "qbo_sync/admin/conflict_change_form.html"

    @admin.display(description="Record")
    def record(self, obj: Conflict) -> str:
        return f"{obj.entity_type} {obj.mapping.object_id} ↔ QBO {obj.mapping.qbo_id or '—'}"

    @admin.display(description="Base")
    def base(self, obj: Conflict) -> str:
        return short(views.json_value(obj.base_value), 40)

    @admin.display(description=lazy(host_label, str)(capital=True))
    def host(self, obj: Conflict) -> str:
        return short(views.json_value(obj.host_value), 40)

    @admin.display(description="QuickBooks")
    def quickbooks(self, obj: Conflict) -> str:
        return short(views.json_value(obj.qbo_value), 40)

    @admin.display(description="Values")
    def values_side_by_side(self, obj: Conflict) -> str:
        return views.conflict_values_table(obj)

    def has_resolve_permission(self, request: HttpRequest) -> bool:
        return may(request, Action.RESOLVE)

    def get_urls(self) -> list:
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/resolve/",
                 wrap(lambda r, object_id: views.resolve_conflict_view(self, r, object_id)),
                 name="qbo_sync_conflict_resolve"),
            *super().get_urls(),
        ]

    def changeform_view(self, request: HttpRequest, object_id: Any = None, form_url: str = "",
                        extra_context: dict | None = None) -> HttpResponse:
        extra = {**(extra_context or {}), "can_resolve": self.has_resolve_permission(request),
                 "host_label": host_label()}
        return super().changeform_view(request, object_id, form_url, extra)

    def _keep(self, request: HttpRequest, queryset: QuerySet, keep: str, label: str) -> None:
        resolved, refused = 0, []
        actor = Actor.from_request(request, "admin")
        for conflict in queryset.filter(state=Conflict.State.OPEN):
            try:
                operations.resolve_conflict(actor, conflict, keep)
            except QboSyncError as exc:
                refused.append(f"#{conflict.pk}: {exc}")
                continue
            resolved += 1
            self.log_change(request, conflict, f"Resolved: kept {label}")
        skipped = queryset.exclude(state=Conflict.State.OPEN).count()
        messages.success(request, f"Kept {label} for {resolved} conflict(s)."
                         + (f" {skipped} were not open." if skipped else ""))
        for line in refused:
            messages.error(request, line)

    @admin.action(permissions=["resolve"], description=lazy(lambda: f"Keep {host_label()}'s value", str)())
    def keep_host(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._keep(request, queryset, "host", f"{host_label()}'s value")

    @admin.action(permissions=["resolve"], description="Keep QuickBooks' value")
    def keep_quickbooks(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._keep(request, queryset, "qbo", "QuickBooks' value")


# --- log and cursors -----------------------------------------------------------------------------------------------


@admin.register(SyncLog)
class SyncLogAdmin(QboReadOnlyAdmin):
    list_display = ("created_at", "level", "event", "organization", "entity_type", "object_id", "qbo_id", "job",
                    "message_short")
    list_filter = ("level", "event", EntityTypeFilter, ORGANIZATION_FILTER)
    list_select_related = ("organization", "job")
    search_fields = ("message", "object_id", "qbo_id", "event")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in SyncLog._meta.fields]

    @admin.display(description="Message")
    def message_short(self, obj: SyncLog) -> str:
        return short(obj.message, 120)


@admin.register(AuditEntry)
class AuditEntryAdmin(QboReadOnlyAdmin):
    """Who changed what: every connect, disconnect, job started or cancelled, retry, resolve and repair."""

    list_display = ("created_at", "actor", "action", "surface", "address", "organization", "entity_type",
                    "object_id", "field", "change", "job")
    list_filter = ("action", "surface", EntityTypeFilter, ORGANIZATION_FILTER,
                   ("user", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("organization", "job", "user")
    search_fields = ("actor", "address", "object_id", "field", "summary")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    @admin.display(description="Change")
    def change(self, obj: AuditEntry) -> str:
        if obj.field:
            return short(f"{views.json_value(obj.old_value)} → {views.json_value(obj.new_value)}", 80)
        return short(obj.summary, 80)


@admin.register(EntityMapping)
class EntityMappingAdmin(QboReadOnlyAdmin):
    """Each host row and its QuickBooks twin: ids, SyncToken, state, the base of the three-way merge and the last
    QBO version recorded (what a person debugging a sync wants to see)."""

    list_display = ("id", "organization", "entity_type", "object_id", "qbo_id", "sync_token", "state",
                    "last_error_short", "last_pushed_at", "last_pulled_at")
    list_filter = ("state", "entity_type", ORGANIZATION_FILTER)
    search_fields = ("object_id", "qbo_id", "last_error")
    fields = ("organization", "entity_type", "content_type", "object_id", "realm_id", "qbo_id", "sync_token",
              "state", "last_error", "merged_into", "snapshot_pretty", "qbo_payload_pretty", "qbo_updated_at",
              "host_updated_at", "last_pushed_at", "last_pulled_at", "created_at", "updated_at")
    readonly_fields = fields

    @admin.display(description="Last error")
    def last_error_short(self, obj: EntityMapping) -> str:
        return short(obj.last_error)

    @admin.display(description="Base (values both sides agreed on)")
    def snapshot_pretty(self, obj: EntityMapping) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.snapshot or {}, indent=2, sort_keys=True, default=str))

    @admin.display(description="Last QuickBooks version")
    def qbo_payload_pretty(self, obj: EntityMapping) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.qbo_payload or {}, indent=2, sort_keys=True, default=str))


@admin.register(PullCursor)
class PullCursorAdmin(QboReadOnlyAdmin):
    list_display = ("organization", "entity_type", "changed_since", "last_run_at", "last_success_at",
                    "running_since")
    list_filter = (EntityTypeFilter, ORGANIZATION_FILTER)
    readonly_fields = [f.name for f in PullCursor._meta.fields]


@admin.register(RefusalCount)
class RefusalCountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Refused webhook deliveries per reason and minute. They belong to no organization (a refused delivery proved
    nothing about whose it is) and carry addresses: superusers only."""

    list_display = ("minute", "endpoint", "reason", "count", "last_message", "last_address")
    list_filter = ("endpoint", "reason")
    date_hierarchy = "minute"
    readonly_fields = [f.name for f in RefusalCount._meta.fields]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)
