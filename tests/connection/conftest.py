"""Fixtures for the connection lifecycle tests: settings pointing at a sandbox, connections, a shared database."""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection as db_connection
from django.db import connections

from qbo_sync.client.oauth import TokenSet
from qbo_sync.models import QboConnection
from qbo_sync.sandbox import Sandbox
from qbo_sync.services.tokens import store_tokens
from tests.factories import OrganizationFactory

CLIENT_ID = "qbo-sync-tests"
CLIENT_SECRET = "qbo-sync-tests-secret-value"
REDIRECT_URI = "http://testserver/qbo/oauth/callback/"


def qbo_settings_for(sandbox: Sandbox, **qbo_sync: Any) -> dict[str, Any]:
    """Django settings that point qbo_sync at ``sandbox`` (QBO_SYNC options merged over the project's)."""
    return {
        "QBO_SYNC": {**django_settings.QBO_SYNC, "ENVIRONMENT": "local", "API_BASE_URL": sandbox.base_url,
                     "AUTH_BASE_URL": sandbox.base_url, "CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": CLIENT_SECRET,
                     "REDIRECT_URI": REDIRECT_URI, **qbo_sync},
    }


@pytest.fixture
def qbo_env(qbo_sandbox: Sandbox, settings: Any) -> Sandbox:
    """The session sandbox as qbo_sync's QBO (environment ``local``)."""
    for name, value in qbo_settings_for(qbo_sandbox).items():
        setattr(settings, name, value)
    return qbo_sandbox  # restoring the settings closes the pooled sessions and drops the throttles (on_reload)


def connect_realm(sandbox: Sandbox, realm_id: str, organization: Any = None) -> QboConnection:
    """A connected QboConnection for ``realm_id`` with tokens minted by the sandbox (no browser flow)."""
    organization = organization or OrganizationFactory()
    data = sandbox.issue_tokens(realm_id, client_id=CLIENT_ID)
    connection = QboConnection(organization=organization, realm_id=realm_id, environment="local",
                               status=QboConnection.Status.CONNECTED)
    store_tokens(connection, TokenSet.from_response(data))
    connection.save()
    return connection


@pytest.fixture
def shared_db(transactional_db: None) -> Iterator[dict[str, Any]]:
    """A committed database that other threads and processes can open; yields its settings dict.

    PostgreSQL (and a file-based SQLite) test database already is one. pytest-django's in-memory SQLite is not
    (other connections get "table is locked" instead of waiting, and other processes cannot see it), so for
    the duration of the test the database is copied to a temporary file and the connection settings point there.
    """
    settings_dict = db_connection.settings_dict
    if db_connection.vendor != "sqlite" or not db_connection.is_in_memory_db():
        yield settings_dict
        return
    memory_name = settings_dict["NAME"]
    keepalive = sqlite3.connect(memory_name, uri=True)  # the in-memory database dies with its last connection
    fd, path = tempfile.mkstemp(prefix="qbo_sync_test_", suffix=".sqlite3")
    os.close(fd)
    target = sqlite3.connect(path)
    keepalive.backup(target)
    target.execute("PRAGMA journal_mode=WAL")
    target.close()
    # Django ignores close() on an in-memory database; repoint first, so the old connection really closes.
    settings_dict["NAME"] = path
    connections.close_all()
    try:
        yield settings_dict
    finally:
        connections.close_all()
        settings_dict["NAME"] = memory_name
        db_connection.ensure_connection()  # reattach to the in-memory database before the keep-alive lets go
        keepalive.close()
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.unlink(path + suffix)
