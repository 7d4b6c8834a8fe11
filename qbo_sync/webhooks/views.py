"""The webhook endpoint. Answers fast (QBO gives 3 s): verify, store, enqueue a pull, 200. No QBO call here."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from qbo_sync import registry
from qbo_sync.conf import qbo_settings
from qbo_sync.exceptions import QboWebhookSignatureError
from qbo_sync.models import QboConnection, WebhookEvent
from qbo_sync.services.refusals import count_refusal
from qbo_sync.webhooks.verify import WebhookPayloadError, parse, verify

logger = logging.getLogger(__name__)

#: Entity names in events -> the pull that reads their change (each spec's ``triggered_by``). Invoices, payments,
#: credit memos and refund receipts change payment state (a refund receipt changes no invoice in QuickBooks: only its
#: own event tells).
PULL_FOR = registry.webhook_routes()


@csrf_exempt
@require_POST
def webhook(request: HttpRequest) -> HttpResponse:
    limit = int(qbo_settings.WEBHOOK_MAX_BYTES)
    address = request.META.get("REMOTE_ADDR")
    declared = request.headers.get("Content-Length", "0").strip()
    if not declared.isascii() or not declared.isdigit():
        return refuse(400, "bad_length", "The Content-Length header is not a number of bytes.", address)
    if len(declared) > 12 or int(declared) > limit:
        return refuse(413, "too_large", f"Body larger than {limit} bytes.", address)
    body = request.body
    if len(body) > limit:
        return refuse(413, "too_large", f"Body larger than {limit} bytes.", address)
    try:
        verify(body, request.headers.get("intuit-signature"), qbo_settings.WEBHOOK_VERIFIER_TOKEN)
    except QboWebhookSignatureError as exc:
        return refuse(401, "signature", str(exc), address)
    try:
        changes = parse(body)
    except WebhookPayloadError as exc:
        return refuse(400, "bad_payload", str(exc), address)
    stored, duplicates, ignored = record_changes(changes)
    return JsonResponse({"stored": stored, "duplicates": duplicates, "ignored": ignored})


def refuse(status: int, reason: str, message: str, address: str | None) -> HttpResponse:
    """Answer a refused delivery; it is counted per minute (``RefusalCount``), never stored as a row of its own."""
    count_refusal("webhooks", reason, message, address)
    return JsonResponse({"detail": message}, status=status)


def record_changes(changes: list) -> tuple[int, int, int]:
    """Store each event once and request one pull per (organization, entity). Unknown realms are ignored."""
    from qbo_sync.services.webhooks import request_pull

    realms = {c.realm_id for c in changes}
    orgs = dict(QboConnection.objects.filter(realm_id__in=realms).exclude(status=QboConnection.Status.DISCONNECTED)
                .values_list("realm_id", "organization_id"))
    stored = duplicates = ignored = 0
    wanted: set[tuple[int, str]] = set()
    for change in changes:
        org_id = orgs.get(change.realm_id)
        pull_entity = PULL_FOR.get(change.entity)
        if org_id is None or pull_entity is None:
            ignored += 1  # another app's realm, or an entity we do not sync (Vendor, Account ...)
            continue
        try:
            with transaction.atomic():
                WebhookEvent.objects.create(
                    realm_id=change.realm_id, organization_id=org_id, entity=change.entity, qbo_id=change.qbo_id,
                    operation=change.operation, last_updated=change.last_updated, event_id=change.event_id,
                    format=change.format, deleted_id=change.deleted_id)
        except IntegrityError:
            duplicates += 1
            continue
        stored += 1
        wanted.add((org_id, pull_entity))
    for org_id, entity in sorted(wanted):
        request_pull(org_id, entity)
    return stored, duplicates, ignored
