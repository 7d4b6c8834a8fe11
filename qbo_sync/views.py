"""Connecting an organization to QuickBooks from the browser: start, callback, disconnect. Thin callers of
``qbo_sync.services.connect``; the admin links here."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from qbo_sync.api.permissions import find_organization
from qbo_sync.exceptions import QboConfigurationError, QboSyncError
from qbo_sync.permissions import Action, Actor, require, visible_organizations
from qbo_sync.services import operations

logger = logging.getLogger(__name__)

TEMPLATE = "qbo_sync/connect_result.html"


def _organization(request: HttpRequest, ref: str) -> Any:
    """The organization named by its ORGANIZATION_LOOKUP_FIELD value, if this user may manage its connection: 404
    when the user cannot see it (no existence leak), 403 when they see it without the ``manage_connection``
    permission (:mod:`qbo_sync.permissions`, the rule of the API and the admin too)."""
    org = find_organization(visible_organizations(request.user), ref.strip()) if ref.strip() else None
    if org is None:
        raise Http404("No such organization")
    require(request.user, Action.MANAGE_CONNECTION, org)
    return org


def _actor(request: HttpRequest) -> Actor:
    return Actor.from_request(request, "page")


@login_required
@require_GET
def connect(request: HttpRequest, org: str) -> HttpResponse:
    """Send the user to Intuit's consent page for ``org`` (its ORGANIZATION_LOOKUP_FIELD value)."""
    organization = _organization(request, org)
    try:
        url = operations.start_connect(_actor(request), organization)
    except QboConfigurationError as exc:
        return render(request, TEMPLATE, {"ok": False, "error": str(exc), "organization": organization}, status=500)
    return HttpResponseRedirect(url)


@login_required
@require_GET
def oauth_callback(request: HttpRequest) -> HttpResponse:
    """Where Intuit sends the user back: finish connecting and say which company it is, or what went wrong."""
    try:
        connection = operations.complete_connect(_actor(request), request.GET)
    except QboSyncError as exc:
        logger.info("QBO connect callback refused: %s", exc)
        return render(request, TEMPLATE, {"ok": False, "error": str(exc)}, status=400)
    return render(request, TEMPLATE, {"ok": True, "connection": connection,
                                      "organization": connection.organization})


@login_required
@require_http_methods(["GET", "POST"])
def disconnect(request: HttpRequest) -> HttpResponse:
    """GET ``?org=<organization>`` asks for confirmation; POST ``org=...`` revokes the tokens and disconnects."""
    ref = (request.POST.get("org") if request.method == "POST" else request.GET.get("org")) or ""
    organization = _organization(request, ref)
    if request.method == "GET":
        return render(request, TEMPLATE, {"confirm_disconnect": True, "organization": organization})
    connection = operations.disconnect(_actor(request), organization)
    return render(request, TEMPLATE, {"ok": True, "disconnected": True, "organization": organization,
                                      "connection": connection})
