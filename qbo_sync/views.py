"""Connecting an organization to QuickBooks from the browser: start, callback, disconnect. Thin callers of
``qbo_sync.services.connect``; the admin links here."""

from __future__ import annotations

import logging
from typing import Any

from django.apps import apps
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.module_loading import import_string
from django.views.decorators.http import require_GET, require_http_methods

from qbo_sync.conf import qbo_settings
from qbo_sync.exceptions import QboConfigurationError, QboSyncError
from qbo_sync.services import connect as connect_service

logger = logging.getLogger(__name__)

TEMPLATE = "qbo_sync/connect_result.html"


def _organization(request: HttpRequest, ref: str) -> Any:
    """The organization named by slug or pk, if this user may manage it (404 otherwise: no existence leak)."""
    from qbo_sync.models.base import ORGANIZATION_MODEL

    model = apps.get_model(ORGANIZATION_MODEL)
    queryset = model._default_manager.all()
    resolver = qbo_settings.ORGANIZATION_RESOLVER
    if resolver and not request.user.is_superuser:
        visible = import_string(resolver) if isinstance(resolver, str) else resolver
        queryset = queryset.filter(pk__in=[getattr(o, "pk", o) for o in visible(request.user)])
    field_names = {f.name for f in model._meta.get_fields()}
    if "slug" in field_names:
        org = queryset.filter(slug=ref).first()
        if org is not None:
            return org
    if ref.isdigit():
        org = queryset.filter(pk=int(ref)).first()
        if org is not None:
            return org
    raise Http404("No such organization")


@staff_member_required
@require_GET
def connect(request: HttpRequest, org: str) -> HttpResponse:
    """Send the user to Intuit's consent page for ``org`` (slug or id)."""
    organization = _organization(request, org)
    try:
        url = connect_service.start_connect(organization, request.user)
    except QboConfigurationError as exc:
        return render(request, TEMPLATE, {"ok": False, "error": str(exc), "organization": organization}, status=500)
    return HttpResponseRedirect(url)


@login_required
@require_GET
def oauth_callback(request: HttpRequest) -> HttpResponse:
    """Where Intuit sends the user back: finish connecting and say which company it is, or what went wrong."""
    try:
        connection = connect_service.complete_connect(request.GET, request.user)
    except QboSyncError as exc:
        logger.info("QBO connect callback refused: %s", exc)
        return render(request, TEMPLATE, {"ok": False, "error": str(exc)}, status=400)
    return render(request, TEMPLATE, {"ok": True, "connection": connection,
                                      "organization": connection.organization})


@staff_member_required
@require_http_methods(["GET", "POST"])
def disconnect(request: HttpRequest) -> HttpResponse:
    """GET ``?org=<slug or id>`` asks for confirmation; POST ``org=...`` revokes the tokens and disconnects."""
    ref = (request.POST.get("org") if request.method == "POST" else request.GET.get("org")) or ""
    organization = _organization(request, ref)
    if request.method == "GET":
        return render(request, TEMPLATE, {"confirm_disconnect": True, "organization": organization})
    connection = connect_service.disconnect(organization)
    return render(request, TEMPLATE, {"ok": True, "disconnected": True, "organization": organization,
                                      "connection": connection})
