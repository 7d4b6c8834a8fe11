"""Connecting through real HTTP redirects (our views + the sandbox's consent page), state checks, disconnect, CLI."""

from __future__ import annotations

import datetime as dt
import io
from urllib.parse import urlsplit

import pytest
import requests
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError

from qbo_sync.models import OAuthState, QboConnection, QueueItem
from qbo_sync.services.connect import (
    QboConnectError,
    QboNotConnected,
    QboOAuthStateError,
    client_for,
    complete_connect,
    disconnect,
    start_connect,
)
from tests.connection.conftest import CLIENT_ID, REDIRECT_URI, connect_realm
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


def consent(authorize_url: str, realm_id: str) -> str:
    """Play the browser at the sandbox's auto-approving consent page; returns the callback path + query."""
    response = requests.get(f"{authorize_url}&realm_id={realm_id}", allow_redirects=False, timeout=10)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI)
    parts = urlsplit(location)
    return f"{parts.path}?{parts.query}"


@pytest.fixture
def staff(client):
    user = UserFactory(is_superuser=True)
    client.force_login(user)
    return user


@pytest.fixture
def company(qbo_env):
    return qbo_env.create_realm(company_name="Hooli Bakeries LLC")


def test_whole_connect_flow_through_real_redirects(client, staff, qbo_env, company) -> None:
    org = OrganizationFactory(slug="hooli")
    response = client.get(f"/qbo/connect/{org.slug}/")
    assert response.status_code == 302
    authorize_url = response["Location"]
    assert authorize_url.startswith(f"{qbo_env.base_url}/connect/oauth2?")
    assert f"client_id={CLIENT_ID}" in authorize_url

    callback = consent(authorize_url, company)
    page = client.get(callback)

    assert page.status_code == 200
    assert "Hooli Bakeries LLC" in page.content.decode()
    connection = QboConnection.objects.get(organization=org)
    assert connection.status == QboConnection.Status.CONNECTED
    assert connection.realm_id == company
    assert connection.company_name == "Hooli Bakeries LLC"
    assert connection.connected_by == staff
    assert connection.access_token and connection.refresh_token
    assert connection.access_token not in connection.access_token_encrypted
    assert connection.access_token_expires_at > connection.connected_at
    assert connection.refresh_token_expires_at > connection.access_token_expires_at
    # The stored tokens work.
    assert client_for(org.pk).company_info()["CompanyName"] == "Hooli Bakeries LLC"


def test_a_replayed_callback_is_refused_and_exchanges_nothing(client, staff, qbo_env, company) -> None:
    org = OrganizationFactory()
    callback = consent(start_connect(org, staff), company)
    assert client.get(callback).status_code == 200
    version = QboConnection.objects.get(organization=org).token_version
    oauth_calls = qbo_env.global_stats["oauth"]

    again = client.get(callback)

    assert again.status_code == 400
    assert "already used" in again.content.decode()
    assert qbo_env.global_stats["oauth"] == oauth_calls  # the code was not presented again
    assert QboConnection.objects.get(organization=org).token_version == version


def test_a_forged_state_is_refused(client, staff, qbo_env, company) -> None:
    org = OrganizationFactory()
    callback = consent(start_connect(org, staff), company)
    path, query = callback.split("?", 1)
    params = dict(p.split("=", 1) for p in query.split("&"))
    params["state"] = params["state"][:-3] + ("AAA" if not params["state"].endswith("AAA") else "BBB")

    page = client.get(path, params)

    assert page.status_code == 400
    assert "not one this site issued" in page.content.decode()
    assert not QboConnection.objects.filter(organization=org).exists()


def test_a_state_signed_for_another_nonce_is_refused(staff, qbo_env) -> None:
    from django.core import signing

    from qbo_sync.services.connect import STATE_SALT

    org = OrganizationFactory()
    state = signing.dumps({"n": "made-up", "o": str(org.pk)}, salt=STATE_SALT)
    with pytest.raises(QboOAuthStateError, match="unknown"):
        complete_connect({"state": state, "code": "x", "realmId": "1"}, staff)


def test_an_expired_state_is_refused(client, staff, qbo_env, company) -> None:
    org = OrganizationFactory()
    callback = consent(start_connect(org, staff), company)
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=11)):
        page = client.get(callback)
    assert page.status_code == 400
    assert "expired" in page.content.decode()
    assert not QboConnection.objects.filter(organization=org).exists()


def test_a_state_started_by_another_user_is_refused(client, staff, qbo_env, company) -> None:
    org = OrganizationFactory()
    callback = consent(start_connect(org, UserFactory()), company)
    page = client.get(callback)
    assert page.status_code == 400
    assert "another user" in page.content.decode()


def test_a_missing_state_and_a_refusal_are_explained(staff, qbo_env) -> None:
    with pytest.raises(QboOAuthStateError, match="no state"):
        complete_connect({"code": "abc", "realmId": "1"}, staff)
    org = OrganizationFactory()
    state = urlsplit(start_connect(org, staff)).query.split("state=")[1].split("&")[0]
    from urllib.parse import unquote

    with pytest.raises(QboConnectError, match="did not authorise"):
        complete_connect({"state": unquote(state), "error": "access_denied"}, staff)


def test_one_company_cannot_be_connected_to_two_organizations(staff, qbo_env, company) -> None:
    connect_realm(qbo_env, company)
    other = OrganizationFactory()
    path_query = consent(start_connect(other, staff), company)
    params = {k: v for k, v in (p.split("=", 1) for p in path_query.split("?", 1)[1].split("&"))}
    from urllib.parse import unquote

    with pytest.raises(QboConnectError, match="already connected"):
        complete_connect({k: unquote(v) for k, v in params.items()}, staff)


def test_connect_requires_login_and_the_manage_connection_action(client, qbo_env) -> None:
    org = OrganizationFactory()
    response = client.get(f"/qbo/connect/{org.slug}/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.force_login(UserFactory(is_staff=False))  # no membership: the organization is not even seen
    assert client.get(f"/qbo/connect/{org.slug}/").status_code == 404
    operator = MembershipFactory(organization=org, role="operator", user=UserFactory(is_staff=True)).user
    client.force_login(operator)  # a member, but connecting is the owner's (docs/security.md)
    assert client.get(f"/qbo/connect/{org.slug}/").status_code == 403
    assert not OAuthState.objects.exists()


def test_disconnect_revokes_tokens_and_keeps_queued_work(client, staff, qbo_env, company) -> None:
    connection = connect_realm(qbo_env, company)
    org = connection.organization
    refresh_token = connection.refresh_token
    items = [QueueItem.objects.create(organization=org, entity_type="Customer", object_id=str(n),
                                      operation="push", next_attempt_at=dt.datetime.now(dt.UTC)) for n in range(3)]

    assert client.get("/qbo/disconnect/", {"org": org.slug}).status_code == 200  # confirmation page
    response = client.post("/qbo/disconnect/", {"org": org.slug})

    assert response.status_code == 200
    connection.refresh_from_db()
    assert connection.status == QboConnection.Status.DISCONNECTED
    assert connection.refresh_token_encrypted == "" and connection.access_token_encrypted == ""
    assert QueueItem.objects.filter(pk__in=[i.pk for i in items], status="pending").count() == 3
    # Revoked at Intuit (the sandbox): the old refresh token is refused.
    answer = requests.post(f"{qbo_env.base_url}/oauth2/v1/tokens/bearer", auth=(CLIENT_ID, "x"), timeout=10,
                           data={"grant_type": "refresh_token", "refresh_token": refresh_token})
    assert answer.json()["error"] == "invalid_grant"
    with pytest.raises(QboNotConnected, match="not connected"):
        client_for(org)
    assert disconnect(OrganizationFactory()) is None


def test_cli_connect_follows_the_sandbox_consent_page(qbo_env, capsys) -> None:
    org = OrganizationFactory(slug="cli-org")
    call_command("qbo_sync", "connect", "--org", "cli-org")
    out = capsys.readouterr().out
    assert "/connect/oauth2?" in out
    connection = QboConnection.objects.get(organization=org)
    assert connection.status == QboConnection.Status.CONNECTED
    assert connection.company_name and connection.company_name in out


def test_cli_disconnect_and_bad_input(qbo_env, company, capsys) -> None:
    connection = connect_realm(qbo_env, company, OrganizationFactory(slug="bye"))
    call_command("qbo_sync", "disconnect", "--org", "bye")
    assert "Disconnected" in capsys.readouterr().out
    connection.refresh_from_db()
    assert connection.status == QboConnection.Status.DISCONNECTED
    with pytest.raises(CommandError, match="No organization with slug 'nope'") as info:
        call_command("qbo_sync", "connect", "--org", "nope")
    assert "\n" not in str(info.value)


def test_cli_connects_a_second_organization_to_another_sandbox_company(qbo_env, settings) -> None:
    """With the bundled sandbox, `connect` always got the sandbox's default company, so a second organization could
    not connect at all ("already connected to another organization") and nothing said what to do. --realm picks
    (and creates) the company; the refusal names it."""
    first, second = OrganizationFactory(slug="north"), OrganizationFactory(slug="south")
    call_command("qbo_sync", "connect", "--org", "north", stdout=io.StringIO())
    taken = QboConnection.objects.get(organization=first).realm_id
    with pytest.raises(CommandError, match=r"already connected to another organization.*--org south --realm ID"):
        call_command("qbo_sync", "connect", "--org", "south", stdout=io.StringIO())
    assert not QboConnection.objects.filter(organization=second, status=QboConnection.Status.CONNECTED).exists()

    call_command("qbo_sync", "connect", "--org", "south", "--realm", "9130350000007702", stdout=io.StringIO())
    connection = QboConnection.objects.get(organization=second)
    assert connection.status == QboConnection.Status.CONNECTED and connection.realm_id == "9130350000007702"
    assert connection.realm_id != taken and "9130350000007702" in qbo_env.realms

    with pytest.raises(CommandError, match="digits only"):
        call_command("qbo_sync", "connect", "--org", "south", "--realm", "12&realm_id=1", stdout=io.StringIO())
    settings.QBO_SYNC = {**settings.QBO_SYNC, "ENVIRONMENT": "sandbox"}
    with pytest.raises(CommandError, match="only with the bundled sandbox"):
        call_command("qbo_sync", "connect", "--org", "south", "--realm", "9130350000007703", stdout=io.StringIO())
