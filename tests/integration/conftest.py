"""Integration fixtures: a Batchly organization connected to a fresh sandbox realm, an "accountant" editing QBO
directly through its API, and a helper that drains the queue the way a worker does."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from qbo_sync.client import InMemoryTokenProvider, InProcessThrottle, QboClient, TokenSet
from qbo_sync.models import QboConnection
from qbo_sync.services.drain import drain
from tests.factories import OrganizationFactory


@pytest.fixture
def sandbox_settings(settings, qbo_sandbox):
    settings.QBO_SYNC = {**settings.QBO_SYNC, "ENVIRONMENT": "local", "API_BASE_URL": qbo_sandbox.base_url,
                         "AUTH_BASE_URL": qbo_sandbox.base_url, "CLIENT_ID": "batchly-test",
                         "CLIENT_SECRET": "batchly-test-secret", "PUSH_DELAY_SECONDS": 0, "THROTTLE_BACKEND": "memory",
                         "RETRY_BASE_SECONDS": 0}
    return settings


def connect_org(qbo_sandbox, realm_id, organization=None) -> QboConnection:
    tokens = qbo_sandbox.issue_tokens(realm_id, client_id="batchly-test")
    now = timezone.now()
    conn = QboConnection(organization=organization or OrganizationFactory(), realm_id=realm_id, environment="local",
                         status=QboConnection.Status.CONNECTED, company_name="Sandbox Company", connected_at=now,
                         access_token_expires_at=now + dt.timedelta(seconds=int(tokens["expires_in"])),
                         refresh_token_expires_at=now + dt.timedelta(
                             seconds=int(tokens.get("x_refresh_token_expires_in", 8726400))))
    conn.access_token = tokens["access_token"]
    conn.refresh_token = tokens["refresh_token"]
    conn.save()
    return conn


@pytest.fixture
def connection(db, sandbox_settings, qbo_sandbox, qbo_realm) -> QboConnection:
    return connect_org(qbo_sandbox, qbo_realm)


@pytest.fixture
def org(connection):
    return connection.organization


@pytest.fixture
def accountant(qbo_sandbox, qbo_realm):
    """A person working in QuickBooks directly (an independent client with its own tokens)."""
    tokens = qbo_sandbox.issue_tokens(qbo_realm, client_id="accountant-app")
    token_set = TokenSet(access_token=tokens["access_token"], refresh_token=tokens["refresh_token"],
                         expires_at=timezone.now() + dt.timedelta(hours=1))
    # The accountant's own app: its client-side throttle is not what these tests are about.
    roomy = InProcessThrottle(100_000, 50, 100_000, requests_per_second=None)
    client = QboClient(qbo_realm, api_base_url=qbo_sandbox.base_url, tokens=InMemoryTokenProvider(token_set),
                       throttle=roomy)
    yield client
    client.close()


@pytest.fixture
def run_queue(db):
    """Drain everything due now, as a worker would; returns the drain report."""

    def run(**kwargs):
        return drain(budget_seconds=kwargs.pop("budget", 120), **kwargs)

    return run
