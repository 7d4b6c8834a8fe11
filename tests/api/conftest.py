"""API fixtures: two organizations (A and B), each connected (a connection row: nothing here talks to QuickBooks),
a member of each, API clients logged in as them, and helpers that make jobs and conflicts through the services."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from rest_framework.test import APIClient

from batchly.models import Customer
from qbo_sync.models import Conflict, EntityMapping, QboConnection
from qbo_sync.services import jobs
from tests.factories import CustomerFactory, MembershipFactory, OrganizationFactory, UserFactory


def connect(org, realm_id: str) -> QboConnection:
    return QboConnection.objects.create(organization=org, realm_id=realm_id, environment="local",
                                        status=QboConnection.Status.CONNECTED, company_name=f"{org.name} Books",
                                        connected_at=timezone.now())


@pytest.fixture
def org_a(db):
    org = OrganizationFactory(slug="org-a", name="Org A")
    connect(org, "9001")
    return org


@pytest.fixture
def org_b(db):
    org = OrganizationFactory(slug="org-b", name="Org B")
    connect(org, "9002")
    return org


@pytest.fixture
def user_a(org_a):
    return MembershipFactory(organization=org_a, user=UserFactory(username="alice")).user


@pytest.fixture
def user_b(org_b):
    return MembershipFactory(organization=org_b, user=UserFactory(username="bob")).user


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def api(user_a) -> APIClient:
    """Alice (member of org A only), with a session."""
    return client_for(user_a)


@pytest.fixture
def api_b(user_b) -> APIClient:
    return client_for(user_b)


@pytest.fixture
def make_push_job():
    def make(org, n: int = 3):
        customers = CustomerFactory.create_batch(n, organization=org)
        return jobs.start_push(org.pk, "Customer", [c.pk for c in customers])

    return make


@pytest.fixture
def make_conflict():
    def make(org, field: str = "email", host="host@example.com", qbo="qbo@example.com"):
        customer = CustomerFactory(organization=org, email=host)
        mapping = EntityMapping.objects.create(
            organization=org, entity_type="Customer", content_type=ContentType.objects.get_for_model(Customer),
            object_id=str(customer.pk), realm_id=QboConnection.objects.get(organization=org).realm_id,
            qbo_id=f"Q{customer.pk}", sync_token="0", snapshot={field: "base@example.com"},
            state=EntityMapping.State.CONFLICT)
        return Conflict.objects.create(organization=org, mapping=mapping, entity_type="Customer", field=field,
                                       base_value="base@example.com", host_value=host, qbo_value=qbo,
                                       rule="critical")

    return make
