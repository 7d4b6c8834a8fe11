"""The OAuth callback's ``realmId`` is only a URL parameter: the realm is proved with the new tokens (a CompanyInfo
read of that realm) before anything is saved, and refusals never name another organization. Issue 12, finding 2.
Against the bundled sandbox, through real redirects."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from qbo_sync.models import QboConnection
from qbo_sync.services.connect import start_connect
from tests.connection.conftest import REDIRECT_URI, connect_realm
from tests.factories import OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    user = UserFactory(is_superuser=True, is_staff=True)
    client.force_login(user)
    return user


def approve(authorize_url: str, realm_id: str) -> tuple[str, dict[str, str]]:
    """The browser at the sandbox's consent page approving ``realm_id``; the callback's path and parameters."""
    response = requests.get(f"{authorize_url}&realm_id={realm_id}", allow_redirects=False, timeout=10)
    assert response.status_code == 302 and response.headers["Location"].startswith(REDIRECT_URI)
    parts = urlsplit(response.headers["Location"])
    return parts.path, dict(parse_qsl(parts.query))


def test_a_tampered_realm_id_is_refused_and_nothing_is_saved(client, staff, qbo_env) -> None:
    mine = qbo_env.create_realm(company_name="Approved Company")
    theirs = qbo_env.create_realm(company_name="Victim Company")
    org = OrganizationFactory(slug="attacker-org")
    path, params = approve(start_connect(org, staff), mine)
    params["realmId"] = theirs

    page = client.get(path, params)

    assert page.status_code == 400
    html = page.content.decode()
    assert "did not confirm" in html and theirs in html
    assert not QboConnection.objects.filter(organization=org).exists()
    assert not QboConnection.objects.filter(realm_id=theirs).exists()
    # The tokens issued for the approved company were revoked, not kept anywhere.
    assert not any(g["realm_id"] == mine for g in qbo_env.oauth.to_state()["grants"])


def test_a_tampered_realm_id_cannot_take_over_a_connected_company_nor_learn_its_owner(client, staff, qbo_env) -> None:
    mine = qbo_env.create_realm(company_name="Approved Company")
    theirs = qbo_env.create_realm(company_name="Victim Company")
    victim = connect_realm(qbo_env, theirs, OrganizationFactory(name="Victim Org Name", slug="victim"))
    org = OrganizationFactory(slug="attacker-org")
    path, params = approve(start_connect(org, staff), mine)
    params["realmId"] = theirs

    page = client.get(path, params)

    assert page.status_code == 400
    html = page.content.decode()
    assert "Victim Org Name" not in html
    assert "already connected" not in html  # not even that the company is connected here
    victim.refresh_from_db()
    assert victim.organization.slug == "victim" and victim.status == QboConnection.Status.CONNECTED
    assert not QboConnection.objects.filter(organization=org).exists()


def test_an_honest_second_connect_of_a_connected_company_names_no_organization(client, staff, qbo_env) -> None:
    company = qbo_env.create_realm(company_name="Shared Company")
    connect_realm(qbo_env, company, OrganizationFactory(name="First Owner Org", slug="first-owner"))
    org = OrganizationFactory(slug="second")
    path, params = approve(start_connect(org, staff), company)

    page = client.get(path, params)

    assert page.status_code == 400
    html = page.content.decode()
    assert "already connected to another organization" in html
    assert "First Owner Org" not in html and "first-owner" not in html
    assert not QboConnection.objects.filter(organization=org).exists()


def test_the_approved_realm_connects_with_its_name_read_before_saving(client, staff, qbo_env) -> None:
    company = qbo_env.create_realm(company_name="Honest Company")
    org = OrganizationFactory(slug="honest")
    path, params = approve(start_connect(org, staff), company)
    assert client.get(path, params).status_code == 200
    connection = QboConnection.objects.get(organization=org)
    assert connection.realm_id == company and connection.company_name == "Honest Company"
    assert connection.status == QboConnection.Status.CONNECTED
