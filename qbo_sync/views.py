"""Connecting an organization to QuickBooks from the browser: start, callback, disconnect. Thin callers of
``qbo_sync.services.connect``; the admin links here."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from qbo_sync.api.permissions import find_organization, visible_organizations
from qbo_sync.exceptions import QboConfigurationError, QboSyncError
from qbo_sync.services import connect as connect_service

logger = logging.getLogger(__name__)

TEMPLATE = "qbo_sync/connect_result.html"


def _organization(request: HttpRequest, ref: str) -> Any:
    """The organization named by its ORGANIZATION_LOOKUP_FIELD value, if this user may manage it (404 otherwise: no
    existence leak).

    The same rule as the API and the admin: the resolver's organizations, all of them for a superuser, and none for
    other staff when no resolver is configured."""
    org = find_organization(visible_organizations(request.user), ref.strip()) if ref.strip() else None
    if org is None:
        raise Http404("No such organization")
    return org


@staff_member_required
@require_GET
def connect(request: HttpRequest, org: str) -> HttpResponse:
    """Send the user to Intuit's consent page for ``org`` (its ORGANIZATION_LOOKUP_FIELD value)."""
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
    """GET ``?org=<organization>`` asks for confirmation; POST ``org=...`` revokes the tokens and disconnects."""
    ref = (request.POST.get("org") if request.method == "POST" else request.GET.get("org")) or ""
    organization = _organization(request, ref)
    if request.method == "GET":
        return render(request, TEMPLATE, {"confirm_disconnect": True, "organization": organization})
    connection = connect_service.disconnect(organization)
    return render(request, TEMPLATE, {"ok": True, "disconnected": True, "organization": organization,
                                      "connection": connection})
