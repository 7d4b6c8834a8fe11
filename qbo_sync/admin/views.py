"""The pages behind the admin's QuickBooks actions: the push/pull confirmation (a per-row dry run, then one job per
organization), resolving a conflict with an edited value, and connecting / disconnecting an organization.

Every page here calls the services; none decides a sync rule itself.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from django import forms
from django.apps import apps
from django.contrib import messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from qbo_sync.admin.actions import check_organizations, group_by_organization, job_url
from qbo_sync.conf import host_label
from qbo_sync.exceptions import QboConfigurationError, QboSyncError
from qbo_sync.models import Conflict, QboConnection, SyncJob
from qbo_sync.models.base import ORGANIZATION_MODEL
from qbo_sync.permissions import Action, Actor, allowed, allowed_organization_ids
from qbo_sync.services import jobs, operations
from qbo_sync.services.conflicts import QboValueError

CONFIRM_TEMPLATE = "qbo_sync/admin/confirm_job.html"
#: Rows listed per organization on a confirmation page (the counts always cover every row).
PREVIEW_ROWS_SHOWN = 500


def organization_model() -> type[models.Model]:
    return apps.get_model(ORGANIZATION_MODEL)


# --- push / pull selected ------------------------------------------------------------------------------------------


def _sections(modeladmin: Any, request: HttpRequest, queryset: models.QuerySet, preview: Any) -> list[dict]:
    """One section per organization among the selected rows: its connection and the preview of every row."""
    adapter = modeladmin.qbo_adapter()
    groups = group_by_organization(adapter, list(queryset))
    check_organizations(request, groups)
    orgs = organization_model()._default_manager.in_bulk(list(groups))
    connections = {c.organization_id: c for c in QboConnection.objects.filter(organization_id__in=list(groups))}
    sections = []
    for org_id, rows in groups.items():
        conn = connections.get(org_id)
        section: dict[str, Any] = {"organization_id": org_id, "organization": orgs.get(org_id, org_id),
                                   "connection": conn, "rows": [], "error": "", "warning": ""}
        if conn is None or conn.status == QboConnection.Status.DISCONNECTED:
            section["error"] = "Not connected to QuickBooks: connect it first. Nothing will be sent for it."
        elif conn.status == QboConnection.Status.NEEDS_REAUTH:
            section["warning"] = "The connection needs re-authorisation: the job waits until it is reconnected."
        try:
            section["rows"] = preview(org_id, rows)
        except QboSyncError as exc:
            section["error"] = str(exc)
        section["counts"] = Counter(r.action for r in section["rows"])
        section["todo"] = [r.object_id for r in section["rows"] if r.todo]
        section["shown"] = section["rows"][:PREVIEW_ROWS_SHOWN]
        section["hidden"] = max(0, len(section["rows"]) - PREVIEW_ROWS_SHOWN)
        sections.append(section)
    return sections


def _confirm_or_start(modeladmin: Any, request: HttpRequest, queryset: models.QuerySet, *, direction: str,
                      preview: Any, start: Any) -> HttpResponse | None:
    entity = modeladmin.qbo_entity()
    sections = _sections(modeladmin, request, queryset, preview)
    if not sections:
        messages.warning(request, "None of the selected rows can be acted on here.")
        return None
    if request.POST.get("post") != "yes":
        return _confirmation_page(modeladmin, request, queryset, sections, direction, entity)
    started: list[SyncJob] = []
    for section in sections:
        org = section["organization"]
        if section["error"]:
            messages.warning(request, f"{org}: {section['error']}")
            continue
        if not section["todo"]:
            messages.info(request, f"{org}: nothing to do, every selected row was skipped.")
            continue
        try:
            job = start(section["organization_id"], section["todo"], Actor.from_request(request, "admin"))
        except QboSyncError as exc:
            messages.error(request, f"{org}: {exc}")
            continue
        started.append(job)
        modeladmin.log_change(request, job, f"Started job {job.pk} from the {modeladmin.opts.verbose_name} admin")
        messages.success(request, format_html('{}: started job <a href="{}">#{}</a> ({} {}).', org, job_url(job),
                                              job.pk, job.total, entity.lower()))
    if not started:
        return None  # back to the changelist, where the messages explain why
    if len(started) == 1:
        return HttpResponseRedirect(job_url(started[0]))
    ids = ",".join(str(job.pk) for job in started)
    return HttpResponseRedirect(f"{reverse('admin:qbo_sync_syncjob_changelist')}?id__in={ids}")


def _confirmation_page(modeladmin: Any, request: HttpRequest, queryset: models.QuerySet, sections: list[dict],
                       direction: str, entity: str) -> HttpResponse:
    opts = modeladmin.model._meta
    action = "qbo_push_selected" if direction == "push" else "qbo_pull_selected"
    title = (f"Sync {opts.verbose_name_plural} to QuickBooks" if direction == "push"
             else f"Pull {opts.verbose_name_plural} from QuickBooks")
    totals = Counter()
    for section in sections:
        totals.update(section["counts"])
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "subtitle": None,
        "opts": opts,
        "app_label": opts.app_label,
        "direction": direction,
        "entity": entity,
        "action_name": action,
        "sections": sections,
        "totals": dict(totals),
        "startable": sum(1 for s in sections if s["todo"] and not s["error"]),
        "selected_pks": [str(pk) for pk in queryset.values_list("pk", flat=True)],
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, CONFIRM_TEMPLATE, context)


def push_selected(modeladmin: Any, request: HttpRequest, queryset: models.QuerySet) -> HttpResponse | None:
    entity = modeladmin.qbo_entity()

    def preview(org_id: int, rows: list[models.Model]) -> list[jobs.PreviewRow]:
        return jobs.preview_push(org_id, entity, [o.pk for o in rows])

    def start(org_id: int, ids: list[str], actor: Actor) -> SyncJob:
        return operations.start_push(actor, org_id, entity, ids)

    return _confirm_or_start(modeladmin, request, queryset, direction="push", preview=preview, start=start)


def pull_selected(modeladmin: Any, request: HttpRequest, queryset: models.QuerySet) -> HttpResponse | None:
    entity = modeladmin.qbo_entity()
    adapter = modeladmin.qbo_adapter()

    def preview(org_id: int, rows: list[models.Model]) -> list[jobs.PreviewRow]:
        return preview_pull(adapter, rows, org_id)

    def start(org_id: int, ids: list[str], actor: Actor) -> SyncJob:
        return operations.start_targeted_pull(actor, org_id, entity, ids)

    return _confirm_or_start(modeladmin, request, queryset, direction="pull", preview=preview, start=start)


def preview_pull(adapter: Any, rows: list[models.Model], organization_id: int) -> list[jobs.PreviewRow]:
    """What a targeted pull does per row (the plans the job follows): rows linked to a QuickBooks record are
    refreshed from it; the rest are skipped (QuickBooks has nothing for them yet)."""
    return list(jobs.preview_targeted_pull(organization_id, adapter.entity, [o.pk for o in rows]))


# --- conflicts -----------------------------------------------------------------------------------------------------


def json_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else value


class ConflictValueForm(forms.Form):
    """The value to keep on both sides. Text is taken as it is when the field holds text; otherwise as JSON."""

    value = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), required=False, strip=False)

    def __init__(self, *args: Any, conflict: Conflict, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conflict = conflict
        samples = [v for v in (conflict.host_value, conflict.qbo_value, conflict.base_value) if v is not None]
        self.as_text = not samples or isinstance(samples[0], str)
        if not self.is_bound:
            self.initial["value"] = json_value(conflict.host_value if conflict.host_value is not None else "")
        if not self.as_text:
            self.fields["value"].help_text = "Enter the value as JSON (e.g. 12.5, true, \"text\")."

    def clean_value(self) -> Any:
        raw = self.cleaned_data["value"]
        if self.as_text:
            return raw
        try:
            return json.loads(raw)
        except ValueError:
            raise forms.ValidationError("Not valid JSON: enter e.g. 12.5, true or \"text\".") from None


def resolve_conflict_view(modeladmin: Any, request: HttpRequest, object_id: str) -> HttpResponse:
    """GET: the side-by-side values and a form to edit the value to keep. POST ``keep=host|qbo|value``."""
    conflict = modeladmin.get_object_or_404(request, object_id)
    if not allowed(request.user, Action.RESOLVE, conflict.organization_id):
        raise PermissionDenied
    change_url = reverse("admin:qbo_sync_conflict_change", args=[conflict.pk])
    form = ConflictValueForm(conflict=conflict)
    if request.method == "POST":
        keep = request.POST.get("keep", "value")
        value = None
        if keep == "value":
            form = ConflictValueForm(request.POST, conflict=conflict)
            if form.is_valid():
                value = form.cleaned_data["value"]
        if keep != "value" or form.is_valid():
            try:
                operations.resolve_conflict(Actor.from_request(request, "admin"), conflict, keep, value=value)
            except QboValueError as exc:
                for message in exc.messages:  # the host field refused the edited value: shown on the form
                    form.add_error("value", message)
            except QboSyncError as exc:
                messages.error(request, str(exc))
            else:
                modeladmin.log_change(request, conflict, f"Resolved: kept {keep}")
                messages.success(request, f"Conflict on {conflict.entity_type} {conflict.field} resolved "
                                          f"({'edited value' if keep == 'value' else 'kept ' + keep}).")
                return HttpResponseRedirect(change_url)
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": f"Resolve conflict on {conflict.entity_type}.{conflict.field}",
        "subtitle": None,
        "opts": modeladmin.opts,
        "original": conflict,
        "conflict": conflict,
        "values": conflict_values(conflict),
        "form": form,
        "change_url": change_url,
        "host_label": host_label(),
        "media": modeladmin.media + form.media,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "qbo_sync/admin/conflict_resolve.html", context)


def conflict_values(conflict: Conflict) -> list[dict[str, Any]]:
    return [
        {"side": "Base (last agreed)", "value": conflict.base_value, "updated_at": None},
        {"side": host_label(capital=True), "value": conflict.host_value, "updated_at": conflict.host_updated_at},
        {"side": "QuickBooks", "value": conflict.qbo_value, "updated_at": conflict.qbo_updated_at},
    ]


def conflict_values_table(conflict: Conflict) -> str:
    rows = format_html_join(
        "", "<tr><th>{}</th><td><code>{}</code></td><td>{}</td></tr>",
        ((v["side"], json_value(v["value"]) if v["value"] is not None else "—", v["updated_at"] or "")
         for v in conflict_values(conflict)))
    return format_html('<table class="qbo-conflict-values"><thead><tr><th>Side</th><th>Value</th><th>Changed at</th>'
                       "</tr></thead><tbody>{}</tbody></table>", rows)


# --- connections ---------------------------------------------------------------------------------------------------


class ConnectForm(forms.Form):
    organization = forms.ModelChoiceField(queryset=None)  # type: ignore[arg-type]

    def __init__(self, *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        qs = organization_model()._default_manager.all()
        manageable = allowed_organization_ids(request.user, Action.MANAGE_CONNECTION)
        if manageable is not None:
            qs = qs.filter(pk__in=manageable)
        self.fields["organization"].queryset = qs


def _start_connect(request: HttpRequest, organization: Any, fallback: str) -> HttpResponse:
    try:
        url = operations.start_connect(Actor.from_request(request, "admin"), organization)
    except (QboConfigurationError, QboSyncError) as exc:
        messages.error(request, f"Cannot connect {organization}: {exc}")
        return HttpResponseRedirect(fallback)
    return HttpResponseRedirect(url)


def connect_view(modeladmin: Any, request: HttpRequest) -> HttpResponse:
    """Pick one of your organizations and go to Intuit's consent page for it."""
    if not modeladmin.has_manage_permission(request):
        raise PermissionDenied
    changelist = reverse("admin:qbo_sync_qboconnection_changelist")
    form = ConnectForm(request.POST or None, request=request)
    if request.method == "POST" and form.is_valid():
        return _start_connect(request, form.cleaned_data["organization"], changelist)
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Connect an organization to QuickBooks",
        "subtitle": None,
        "opts": modeladmin.opts,
        "form": form,
        "mode": "connect",
        "media": modeladmin.media,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "qbo_sync/admin/connection_confirm.html", context)


def reconnect_view(modeladmin: Any, request: HttpRequest, object_id: str) -> HttpResponse:
    """POST: start connecting this connection's organization again (Intuit's consent page)."""
    connection = modeladmin.get_object_or_404(request, object_id)
    if not allowed(request.user, Action.MANAGE_CONNECTION, connection.organization_id) or request.method != "POST":
        raise PermissionDenied
    return _start_connect(request, connection.organization,
                          reverse("admin:qbo_sync_qboconnection_change", args=[connection.pk]))


def disconnect_view(modeladmin: Any, request: HttpRequest, object_id: str) -> HttpResponse:
    """GET asks for confirmation; POST revokes the tokens and marks the connection disconnected."""
    connection = modeladmin.get_object_or_404(request, object_id)
    if not allowed(request.user, Action.MANAGE_CONNECTION, connection.organization_id):
        raise PermissionDenied
    change_url = reverse("admin:qbo_sync_qboconnection_change", args=[connection.pk])
    if request.method == "POST":
        operations.disconnect(Actor.from_request(request, "admin"), connection.organization)
        modeladmin.log_change(request, connection, "Disconnected from QuickBooks")
        messages.success(request, f"{connection.organization} is disconnected from QuickBooks.")
        return HttpResponseRedirect(change_url)
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": f"Disconnect {connection.organization} from QuickBooks?",
        "subtitle": None,
        "opts": modeladmin.opts,
        "original": connection,
        "connection": connection,
        "mode": "disconnect",
        "change_url": change_url,
        "media": modeladmin.media,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "qbo_sync/admin/connection_confirm.html", context)


__all__ = ["conflict_values_table", "connect_view", "disconnect_view", "preview_pull", "pull_selected",
           "push_selected", "reconnect_view", "resolve_conflict_view"]
