"""Links are bound to their QuickBooks company and organization (issue 11 defect 4, issue 12 finding 1).

Mapping lookups used to key on the host row only. A host row moved to another organization, or an organization
reconnected to a different company, reused the old company's QBO ids: a sparse update landed on whatever record
had that id in the new company.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from batchly.models import Customer
from qbo_sync.client import InMemoryTokenProvider, InProcessThrottle, QboClient, TokenSet
from qbo_sync.exceptions import QboForeignRowError
from qbo_sync.models import EntityMapping, QueueItem, SyncJob
from qbo_sync.services.connect import complete_connect, start_connect
from qbo_sync.services.queue import create_job, enqueue, start_pull
from tests.factories import CustomerFactory, InvoiceFactory, OrganizationFactory
from tests.integration.conftest import connect_org

pytestmark = pytest.mark.django_db(transaction=True)


def client_of(qbo_sandbox, realm_id) -> QboClient:
    tokens = qbo_sandbox.issue_tokens(realm_id, client_id="accountant-app")
    token_set = TokenSet(access_token=tokens["access_token"], refresh_token=tokens["refresh_token"],
                         expires_at=timezone.now() + dt.timedelta(hours=1))
    return QboClient(realm_id, api_base_url=qbo_sandbox.base_url, tokens=InMemoryTokenProvider(token_set),
                     throttle=InProcessThrottle(100_000, 50, 100_000, requests_per_second=None))


def reconnect(org, realm_id, settings) -> None:
    """Connect ``org`` to another company through the real OAuth flow (the sandbox's consent page)."""
    settings.QBO_SYNC = {**settings.QBO_SYNC, "REDIRECT_URI": "http://testserver/qbo/oauth/callback/"}
    response = requests.get(f"{start_connect(org)}&realm_id={realm_id}", allow_redirects=False, timeout=10)
    complete_connect(dict(parse_qsl(urlsplit(response.headers["Location"]).query)))
    org.qbo_connection.refresh_from_db()
    assert org.qbo_connection.realm_id == realm_id


@pytest.fixture
def other_company(qbo_sandbox):
    realm_id = qbo_sandbox.create_realm()
    client = client_of(qbo_sandbox, realm_id)
    yield realm_id, client
    client.close()
    qbo_sandbox.reset(realm_id)


def test_a_reconnect_to_another_company_links_by_natural_key_never_by_old_ids(
        org, accountant, run_queue, other_company, settings) -> None:
    customer = CustomerFactory(organization=org, display_name="Acme Ltd", email="ap@acme.test")
    run_queue()
    old = EntityMapping.objects.get(object_id=str(customer.pk))
    realm2, accountant2 = other_company
    # In the new company the old id belongs to somebody else; Acme is there under another id.
    stranger = accountant2.create("Customer", {"DisplayName": "Somebody Else", "PrimaryEmailAddr": {
        "Address": "else@x.test"}}, request_id="r2-stranger")
    acme = accountant2.create("Customer", {"DisplayName": "Acme Ltd"}, request_id="r2-acme")
    assert stranger["Id"] == old.qbo_id  # the trap the old lookups fell into

    reconnect(org, realm2, settings)
    customer.phone = "555-0100"
    customer.save()
    report = run_queue()

    assert report.failed == 0
    assert accountant2.read("Customer", stranger["Id"])["DisplayName"] == "Somebody Else"
    remote = accountant2.read("Customer", acme["Id"])
    assert remote["PrimaryEmailAddr"]["Address"] == "ap@acme.test"
    assert accountant2.count("Customer") == 2
    links = {m.realm_id: m.qbo_id for m in EntityMapping.objects.filter(object_id=str(customer.pk))}
    assert links == {old.realm_id: old.qbo_id, realm2: acme["Id"]}  # the old link stays, unused


def test_after_a_reconnect_a_pull_reads_everything_and_links_by_natural_key(
        org, accountant, run_queue, other_company, settings) -> None:
    customer = CustomerFactory(organization=org, display_name="Acme Ltd")
    run_queue()
    start_pull(org.pk, "Customer")
    run_queue()  # the cursor now stands at "now" in the first company
    realm2, accountant2 = other_company
    acme = accountant2.create("Customer", {"DisplayName": "Acme Ltd"}, request_id="r2-acme")
    reconnect(org, realm2, settings)
    job = start_pull(org.pk, "Customer")
    run_queue()
    job.refresh_from_db()
    assert job.state == "completed"
    mapping = EntityMapping.objects.get(object_id=str(customer.pk), realm_id=realm2)
    assert mapping.qbo_id == acme["Id"]
    assert Customer.objects.filter(organization=org).count() == 1


def test_a_row_moved_to_another_organization_after_enqueue_is_refused_at_push(
        org, accountant, run_queue, qbo_sandbox) -> None:
    other = connect_org(qbo_sandbox, qbo_sandbox.create_realm()).organization
    customer = CustomerFactory(organization=org)
    QueueItem.objects.all().delete()
    job = create_job(org.pk, "push", "Customer", [customer.pk], QueueItem.Operation.PUSH)
    Customer.objects.filter(pk=customer.pk).update(organization=other)  # moved (the host's admin allowed it)
    run_queue()
    item = QueueItem.objects.get(job=job)
    assert item.status == "failed" and item.error_code == "tenancy"
    assert "belongs to another organization" in item.last_error and "nothing was sent" in item.last_error
    assert accountant.count("Customer") == 0
    assert SyncJob.objects.get(pk=job.pk).state == "failed"


def test_a_linked_row_moved_to_another_organization_is_refused_there(org, accountant, run_queue, qbo_sandbox) -> None:
    other_conn = connect_org(qbo_sandbox, qbo_sandbox.create_realm())
    other_client = client_of(qbo_sandbox, other_conn.realm_id)
    customer = CustomerFactory(organization=org)
    run_queue()
    assert EntityMapping.objects.get(object_id=str(customer.pk)).qbo_id
    customer.organization = other_conn.organization
    customer.email = "planted@attacker.test"
    customer.save()  # queues a push for the other organization
    run_queue()
    item = QueueItem.objects.filter(organization=other_conn.organization).get()
    assert item.status == "failed" and item.error_code == "tenancy"
    assert "linked to QuickBooks by another organization" in item.last_error
    assert other_client.count("Customer") == 0
    assert accountant.read("Customer", EntityMapping.objects.get()
                           .qbo_id).get("PrimaryEmailAddr", {}).get("Address") != "planted@attacker.test"
    other_client.close()


def test_an_invoice_pointing_at_another_organizations_customer_is_refused(
        org, accountant, run_queue, qbo_sandbox) -> None:
    stranger = CustomerFactory(organization=OrganizationFactory())
    invoice = InvoiceFactory(organization=org)
    QueueItem.objects.all().delete()
    type(invoice).objects.filter(pk=invoice.pk).update(customer=stranger)
    job = create_job(org.pk, "push", "Invoice", [invoice.pk], QueueItem.Operation.PUSH)
    run_queue()
    item = QueueItem.objects.get(job=job)
    assert item.status == "failed" and "belongs to another organization" in item.last_error
    assert accountant.count("Invoice") == 0 and accountant.count("Customer") == 0


def test_enqueueing_a_foreign_row_is_refused(org) -> None:
    stranger = CustomerFactory(organization=OrganizationFactory())
    mine = CustomerFactory(organization=org)
    QueueItem.objects.all().delete()
    with pytest.raises(QboForeignRowError, match=f"Customer {stranger.pk} belongs to another organization"):
        enqueue(org.pk, "Customer", [mine.pk, stranger.pk], QueueItem.Operation.PUSH)
    with pytest.raises(QboForeignRowError):
        create_job(org.pk, "push", "Customer", [stranger.pk], QueueItem.Operation.PUSH)
    assert not QueueItem.objects.exists() and not SyncJob.objects.exists()
    assert enqueue(org.pk, "Customer", [mine.pk, "999999"], QueueItem.Operation.PUSH) == 2  # unknown ids: not foreign


def test_the_migration_gives_links_without_a_realm_their_organizations_company(org) -> None:
    from importlib import import_module

    from django.apps import apps

    customer = CustomerFactory(organization=org)
    unconnected = CustomerFactory(organization=OrganizationFactory())
    for row in (customer, unconnected):
        EntityMapping.objects.create(organization_id=row.organization_id, entity_type="Customer", realm_id="",
                                     content_type=ContentType.objects.get_for_model(Customer), object_id=str(row.pk))
    migration = import_module("qbo_sync.migrations.0006_mapping_bound_to_realm")
    migration.fill_realm_ids(apps, None)
    realms = dict(EntityMapping.objects.values_list("object_id", "realm_id"))
    assert realms == {str(customer.pk): org.qbo_connection.realm_id, str(unconnected.pk): ""}
