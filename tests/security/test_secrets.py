"""Secrets after a full run against the sandbox: a token refresh, a push of customers and invoices, a pull, a webhook.

No access token (the expired one or the new one), refresh token, client secret, webhook verifier token or
``Authorization``/``Bearer`` header shows up in any log record (DEBUG, every logger), the sync's rows (log, queue,
mappings, conflicts, connection error), the admin pages or the API's answers.
"""

from __future__ import annotations

import base64
import json
import logging
import re

import pytest
from django.forms.models import model_to_dict
from rest_framework.test import APIClient

from qbo_sync.models import Conflict, EntityMapping, QboConnection, QueueItem, SyncJob, SyncLog, WebhookEvent
from qbo_sync.services.jobs import start_pull, start_push
from qbo_sync.webhooks.verify import signature
from tests.factories import CustomerFactory, InvoiceFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

VERIFIER = "verifier-9c1f0e7a5b3d42e8a6f1"
#: A request's credentials as a header, a header dict or a curl line would carry them (not the token endpoint's URL,
#: ``/oauth2/v1/tokens/bearer``).
HEADERS = {"Authorization header": re.compile(r"authorization['\"]?\s*[:=]", re.IGNORECASE),
           "Bearer credentials": re.compile(r"Bearer\s+[\w.~+/=-]{12,}"),
           "Basic credentials": re.compile(r"Basic\s+[A-Za-z0-9+/=]{12,}")}
CHANGE_PAGES = 8  # per model: the first few rows' change pages (every connection and job)


def fragments(secret: str) -> list[str]:
    """The secret, and pieces of it that a truncated message would still carry (tokens are a fixed prefix plus
    random text: the pieces skip the prefix)."""
    return [secret, secret[4:20], secret[-16:]] if len(secret) > 24 else [secret]


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    found = [name for name, secret in secrets.items() for piece in fragments(secret) if piece in text]
    found += [name for name, pattern in HEADERS.items() if pattern.search(text)]
    return sorted(set(found))


def test_no_secret_leaks_anywhere_after_a_full_run(client, sandbox_settings, qbo_sandbox, qbo_realm, connection,
                                                   run_queue, caplog) -> None:
    for name in ("", "qbo_sync", "django", "django.request", "django.server", "urllib3", "requests"):
        caplog.set_level(logging.DEBUG, logger=name or None)
    sandbox_settings.QBO_SYNC = {**sandbox_settings.QBO_SYNC, "WEBHOOK_VERIFIER_TOKEN": VERIFIER}
    org = connection.organization
    old_access, old_refresh = connection.access_token, connection.refresh_token

    assert qbo_sandbox.expire_access_tokens(qbo_realm) >= 1
    customers = CustomerFactory.create_batch(3, organization=org)
    run_queue()  # the real-time pushes of the new customers: the first call gets 401 and refreshes
    invoices = [InvoiceFactory(organization=org, customer=c) for c in customers[:2]]
    start_push(org.pk, "Customer", [c.pk for c in customers])
    start_push(org.pk, "Invoice", [i.pk for i in invoices])
    run_queue()
    start_pull(org.pk, "Customer", full=True)
    run_queue()
    qbo_id = EntityMapping.objects.filter(entity_type="Customer", qbo_id__isnull=False).values_list(
        "qbo_id", flat=True).first()
    body = json.dumps({"eventNotifications": [{"realmId": qbo_realm, "dataChangeEvent": {"entities": [
        {"name": "Customer", "id": qbo_id, "operation": "Update", "lastUpdated": "2026-11-23T10:00:00Z"}]}}]}).encode()
    hooked = client.post("/qbo/webhooks/", data=body, content_type="application/json",
                         HTTP_INTUIT_SIGNATURE=signature(body, VERIFIER))
    assert hooked.status_code == 200 and hooked.json()["stored"] == 1
    run_queue()

    connection = QboConnection.objects.get(pk=connection.pk)
    assert connection.access_token != old_access, "the access token was not refreshed"
    assert EntityMapping.objects.filter(entity_type="Invoice", qbo_id__isnull=False).count() == 2
    assert WebhookEvent.objects.exists() and SyncJob.objects.filter(kind="pull").count() >= 2
    secret_values = {"access token": connection.access_token, "refresh token": connection.refresh_token,
                     "old access token": old_access, "old refresh token": old_refresh,
                     "client secret": sandbox_settings.QBO_SYNC["CLIENT_SECRET"], "verifier token": VERIFIER,
                     "basic credentials": base64.b64encode(
                         f"{sandbox_settings.QBO_SYNC['CLIENT_ID']}:{sandbox_settings.QBO_SYNC['CLIENT_SECRET']}".encode()).decode()}
    assert all(secret_values.values())

    # Every log record of the run: its message, arguments, extras and formatted traceback.
    assert caplog.records, "nothing was logged: the capture is not working"
    for record in caplog.records:
        text = caplog.handler.format(record) + repr(record.args) + repr(vars(record))
        assert not leaks(text, secret_values), (record.name, record.getMessage()[:300])

    # The sync's own rows.
    rows = [*SyncLog.objects.all(), *QueueItem.objects.all(), *EntityMapping.objects.all(), *Conflict.objects.all(),
            *SyncJob.objects.all(), *WebhookEvent.objects.all()]
    for row in rows:
        assert not leaks(repr(model_to_dict(row)), secret_values), (type(row).__name__, row.pk)
    assert not leaks(connection.last_error, secret_values)

    # The admin (a superuser sees every row and field).
    admin = UserFactory(username="root", is_superuser=True)
    client.force_login(admin)
    pages = []
    for model, queryset in (("qboconnection", QboConnection.objects.all()), ("syncjob", SyncJob.objects.all()),
                            ("queueitem", QueueItem.objects.order_by("-attempts", "pk")[:CHANGE_PAGES]),
                            ("synclog", SyncLog.objects.order_by("-level", "pk")[:CHANGE_PAGES]),
                            ("conflict", Conflict.objects.all()[:CHANGE_PAGES])):
        pages.append(f"/admin/qbo_sync/{model}/")
        pages += [f"/admin/qbo_sync/{model}/{row.pk}/change/" for row in queryset]
    assert len(pages) > 10
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        assert not leaks(response.content.decode(), secret_values), page

    # The API, as a member of the organization.
    api = APIClient()
    api.force_login(MembershipFactory(organization=org, user=UserFactory(username="member")).user)
    paths = ["/api/qbo/connection/", "/api/qbo/jobs/?limit=500", "/api/qbo/conflicts/", "/api/qbo/progress/"]
    paths += [f"/api/qbo/jobs/{pk}/" for pk in SyncJob.objects.values_list("pk", flat=True)]
    for path in paths:
        response = api.get(path)
        assert response.status_code == 200, path
        assert not leaks(response.content.decode(), secret_values), path
