"""Webhooks: signatures over the raw body, both payload formats, duplicates, bad deliveries, and the live path
from an accountant's edit in the sandbox to the Batchly row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchly.models import Customer
from qbo_sync.models import EntityMapping, QueueItem, SyncJob, WebhookEvent
from qbo_sync.webhooks.verify import signature, verify
from tests.factories import CustomerFactory

DATA = Path(__file__).parent / "data"
TOKEN = "verifier-token-for-tests"
URL = "/qbo/webhooks/"


@pytest.fixture
def webhook_settings(sandbox_settings):
    sandbox_settings.QBO_SYNC = {**sandbox_settings.QBO_SYNC, "WEBHOOK_VERIFIER_TOKEN": TOKEN}
    return sandbox_settings


def post(client, body: bytes, sig: str | None = "auto", **headers):
    if sig == "auto":
        sig = signature(body, TOKEN)
    if sig is not None:
        headers["HTTP_INTUIT_SIGNATURE"] = sig
    return client.post(URL, data=body, content_type="application/json", **headers)


def legacy(realm: str, *entities: tuple[str, str, str, str]) -> bytes:
    return json.dumps({"eventNotifications": [{"realmId": realm, "dataChangeEvent": {"entities": [
        {"name": n, "id": i, "operation": op, "lastUpdated": ts} for n, i, op, ts in entities]}}]}).encode()


def test_the_recorded_intuit_signature_verifies() -> None:
    vector = json.loads((DATA / "webhook_signature_test_vector.json").read_text())
    body = (DATA / "webhook_payload_legacy.raw.json").read_bytes()
    verify(body, vector["intuit_signature"], vector["verifier_token"])
    assert signature(body, vector["verifier_token"]) == vector["intuit_signature"]


@pytest.mark.django_db
@pytest.mark.parametrize("sig", [None, "", "AAAA", signature(b"other body", TOKEN)])
def test_a_bad_or_missing_signature_is_refused_and_enqueues_nothing(client, webhook_settings, connection, sig) -> None:
    response = post(client, legacy(connection.realm_id, ("Customer", "1", "Update", "2026-11-23T10:00:00Z")), sig=sig)
    assert response.status_code == 401
    assert not WebhookEvent.objects.exists() and not SyncJob.objects.exists()


@pytest.mark.django_db
def test_bad_bodies_get_clear_errors(client, webhook_settings, connection) -> None:
    assert post(client, b"not json").status_code == 400
    assert post(client, b'{"hello": 1}').status_code == 400
    assert post(client, b'[{"specversion": "0.3"}]').status_code == 400
    huge = b'{"eventNotifications": []' + b" " * (5 * 1024 * 1024) + b"}"
    assert post(client, huge).status_code == 413
    assert client.get(URL).status_code == 405
    assert not WebhookEvent.objects.exists() and not SyncJob.objects.exists()


@pytest.mark.django_db
def test_events_are_stored_once_and_trigger_one_pull_per_entity(client, webhook_settings, connection) -> None:
    body = legacy(connection.realm_id, ("Customer", "1", "Update", "2026-11-23T10:00:00Z"),
                  ("Customer", "2", "Create", "2026-11-23T10:00:01Z"),
                  ("Vendor", "9", "Update", "2026-11-23T10:00:02Z"),
                  ("Payment", "7", "Create", "2026-11-23T10:00:03Z"))
    first = post(client, body).json()
    again = post(client, body).json()  # a redelivery
    assert first == {"stored": 3, "duplicates": 0, "ignored": 1}
    assert again == {"stored": 0, "duplicates": 3, "ignored": 1}
    jobs = SyncJob.objects.filter(kind="pull")
    assert sorted(jobs.values_list("entity_type", flat=True)) == ["Customer", "Payment"]
    assert all(j.organization_id == connection.organization_id for j in jobs)


@pytest.mark.django_db
def test_cloudevents_and_unknown_realms(client, webhook_settings, connection) -> None:
    events = [
        {"specversion": "1.0", "id": "e1", "source": "intuit.x", "type": "qbo.customer.updated.v1",
         "time": "2026-11-23T10:00:00Z", "intuitentityid": "5", "intuitaccountid": connection.realm_id, "data": {}},
        {"specversion": "1.0", "id": "e2", "source": "intuit.x", "type": "qbo.item.created.v1",
         "time": "2026-11-23T10:00:00Z", "intuitentityid": "6", "intuitaccountid": "someone-elses-realm"},
    ]
    assert post(client, json.dumps(events).encode()).json() == {"stored": 1, "duplicates": 0, "ignored": 1}
    assert WebhookEvent.objects.get().format == "cloudevents"
    recorded = (DATA / "webhook_payload_cloudevents.json").read_bytes()  # an Account event: not ours, ignored
    assert post(client, recorded).json()["ignored"] == 1


@pytest.mark.django_db(transaction=True)
def test_an_accountants_edit_reaches_batchly_through_a_webhook(live_server, webhook_settings, connection, accountant,
                                                               qbo_sandbox, run_queue) -> None:
    customer = CustomerFactory(organization=connection.organization)
    run_queue()
    mapping = EntityMapping.objects.get(object_id=str(customer.pk), entity_type="Customer")
    qbo_sandbox.configure(webhook_url=live_server.url + URL, verifier_token=TOKEN)
    try:
        current = accountant.read("Customer", mapping.qbo_id)
        accountant.update("Customer", {"Id": mapping.qbo_id, "SyncToken": current["SyncToken"], "sparse": True,
                                       "CompanyName": "Changed in QuickBooks"}, request_id="acct-webhook-1")
        assert qbo_sandbox.wait_for_webhooks(timeout=10)
    finally:
        qbo_sandbox.configure(webhook_url=None, verifier_token=None)
    assert WebhookEvent.objects.filter(qbo_id=mapping.qbo_id).exists()
    assert QueueItem.objects.filter(operation="pull", status="pending").exists()
    run_queue()
    assert Customer.objects.get(pk=customer.pk).company_name == "Changed in QuickBooks"
