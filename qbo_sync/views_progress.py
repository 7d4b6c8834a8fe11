"""Server-rendered pages: a job's live progress (polls the API) and an organization's sync dashboard.

For anyone logged in who holds the ``view`` action (:mod:`qbo_sync.permissions`), scoped like the API: a job or
organization the user cannot see, or may not view, answers 404.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from qbo_sync import registry
from qbo_sync.api.permissions import find_organization, viewable_organizations
from qbo_sync.conf import host_label
from qbo_sync.models import Conflict, SyncJob
from qbo_sync.organizations import organization_ref
from qbo_sync.services.status import organization_overview

RECENT_JOBS = 20
OPEN_CONFLICTS_SHOWN = 20


@login_required
@require_GET
def job_progress(request: HttpRequest, pk: int) -> HttpResponse:
    visible = viewable_organizations(request.user)
    job = (SyncJob.objects.select_related("organization")
           .filter(pk=pk, organization_id__in=visible.values("pk")).first())
    if job is None:
        raise Http404("No such job.")
    return render(request, "qbo_sync/job_progress.html", {
        "job": job,
        "state_labels": dict(SyncJob.State.choices),  # the page says what the admin says for each API state
        "api_url": reverse("qbo_sync_api:job-detail", args=[job.pk]),
        "cancel_url": reverse("qbo_sync_api:job-cancel", args=[job.pk]),
        "dashboard_url": reverse("qbo_sync:dashboard") + f"?org={organization_ref(job.organization)}",
    })


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    visible = viewable_organizations(request.user)
    ref = (request.GET.get("org") or "").strip()
    if ref:
        org = find_organization(visible, ref)
        if org is None:
            raise Http404("No such organization.")
    else:
        candidates = list(visible[:200])
        if len(candidates) != 1:
            return render(request, "qbo_sync/dashboard.html",
                          {"choose": [(organization_ref(o), o) for o in candidates]})
        org = candidates[0]
    overview = organization_overview(org.pk)
    last_jobs = overview["last_jobs"]
    entities = []
    for entity in registry.names():
        entities.append({
            "name": entity,
            "last_pull": (overview["pulls"].get(entity) or {}).get("last_success_at"),
            "last_push_job": last_jobs.get(f"push:{entity}"),
            "last_pull_job": last_jobs.get(f"pull:{entity}"),
        })
    jobs = list(SyncJob.objects.filter(organization_id=org.pk).order_by("-created_at", "-pk")[:RECENT_JOBS])
    conflicts = list(Conflict.objects.filter(organization_id=org.pk, state=Conflict.State.OPEN)
                     .select_related("mapping").order_by("-created_at")[:OPEN_CONFLICTS_SHOWN])
    slug = organization_ref(org)
    return render(request, "qbo_sync/dashboard.html", {
        "organization": org,
        "org_ref": slug,
        "overview": overview,
        "connection": overview["connection"],
        "queue": overview["queue"],
        "entities": entities,
        "jobs": jobs,
        "open_conflicts": conflicts,
        "host_label": host_label(capital=True),
        "progress_api_url": reverse("qbo_sync_api:queue-progress") + f"?org={slug}",
    })
