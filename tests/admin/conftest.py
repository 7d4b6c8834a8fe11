"""Admin fixtures: the integration tests' organization connected to the bundled sandbox (``org``), a second
organization connected by a bare row (nothing here talks to QuickBooks for it), and staff users with specific model
permissions and a membership in ``org`` only."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.utils import timezone

from batchly.models import Customer
from qbo_sync.models import Conflict, EntityMapping, QboConnection
from tests.factories import CustomerFactory, MembershipFactory, OrganizationFactory, UserFactory
from tests.integration.conftest import accountant, connection, org, run_queue, sandbox_settings  # noqa: F401

#: What an operator of one organization is given: run the QuickBooks actions and act on qbo_sync's rows.
OPERATOR_PERMS = [
    "batchly.view_customer", "batchly.change_customer", "batchly.view_item", "batchly.change_item",
    "batchly.view_invoice",
    "qbo_sync.add_syncjob", "qbo_sync.view_syncjob", "qbo_sync.change_syncjob",
    "qbo_sync.view_queueitem", "qbo_sync.change_queueitem",
    "qbo_sync.view_conflict", "qbo_sync.change_conflict",
    "qbo_sync.view_qboconnection", "qbo_sync.change_qboconnection",
    "qbo_sync.view_synclog", "qbo_sync.view_pullcursor",
]
#: Someone who may look but not act.
VIEWER_PERMS = [
    "batchly.view_customer", "batchly.view_item", "batchly.view_invoice",
    "qbo_sync.view_syncjob", "qbo_sync.view_queueitem", "qbo_sync.view_conflict", "qbo_sync.view_qboconnection",
    "qbo_sync.view_synclog", "qbo_sync.view_pullcursor",
]


def grant(user, perms: list[str]):
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


def staff_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def bare_connection(organization, realm_id: str) -> QboConnection:
    return QboConnection.objects.create(organization=organization, realm_id=realm_id, environment="local",
                                        status=QboConnection.Status.CONNECTED, company_name=f"{organization} Books",
                                        connected_at=timezone.now())


@pytest.fixture
def other_org(db):
    organization = OrganizationFactory(name="Other Org", slug="other-org")
    bare_connection(organization, "777000")
    return organization


@pytest.fixture
def operator(org):  # noqa: F811 (the integration fixture)
    user = MembershipFactory(organization=org, user=UserFactory(username="operator")).user
    return grant(user, OPERATOR_PERMS)


@pytest.fixture
def operator_client(operator) -> Client:
    return staff_client(operator)


@pytest.fixture
def viewer_client(org) -> Client:  # noqa: F811 (the integration fixture)
    user = MembershipFactory(organization=org, user=UserFactory(username="viewer"), role="viewer").user
    return staff_client(grant(user, VIEWER_PERMS))


@pytest.fixture
def make_conflict():
    """An open conflict on a customer's email (a mapping as a pull leaves it when the field is critical)."""

    def make(organization, host="host@example.com", qbo="qbo@example.com", base="base@example.com"):
        customer = CustomerFactory(organization=organization, email=host)
        mapping = EntityMapping.objects.create(
            organization=organization, entity_type="Customer",
            content_type=ContentType.objects.get_for_model(Customer), object_id=str(customer.pk),
            realm_id=QboConnection.objects.get(organization=organization).realm_id, qbo_id=f"Q{customer.pk}",
            sync_token="0", snapshot={"email": base}, state=EntityMapping.State.CONFLICT)
        return Conflict.objects.create(organization=organization, mapping=mapping, entity_type="Customer",
                                       field="email", base_value=base, host_value=host, qbo_value=qbo,
                                       rule="critical", host_updated_at=timezone.now(),
                                       qbo_updated_at=timezone.now())

    return make
