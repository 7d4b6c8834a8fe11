"""Token refresh: before expiry and on 401, single-flight across threads and processes, invalid_grant handling,
and tokens never in logs or in the database in clear."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection as db_connection
from django.db import connections
from django.utils import timezone

from qbo_sync.exceptions import QboReauthRequired
from qbo_sync.models import QboConnection, QueueItem
from qbo_sync.sandbox import Sandbox
from qbo_sync.services.connect import client_for
from qbo_sync.services.tokens import DatabaseTokenProvider
from qbo_sync.signals import connection_needs_reauth
from tests.connection.conftest import CLIENT_ID, CLIENT_SECRET, connect_realm, qbo_settings_for
from tests.factories import OrganizationFactory

ROOT = Path(__file__).resolve().parents[2]


class CountingSandbox(Sandbox):
    """A sandbox of our own that counts refresh-token grants and rotates the refresh token on every refresh."""

    def __init__(self) -> None:
        super().__init__(refresh_rotate_after=0)
        self.refresh_calls = 0
        self.refresh_failures = 0
        original = self.oauth.refresh
        guard = threading.Lock()

        def counting_refresh(client_id: str, token: str) -> dict:
            with guard:
                self.refresh_calls += 1
            try:
                return original(client_id, token)
            except Exception:
                with guard:
                    self.refresh_failures += 1
                raise

        self.oauth.refresh = counting_refresh  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def rotating_sandbox() -> Iterator[CountingSandbox]:
    sandbox = CountingSandbox()
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def env(rotating_sandbox: CountingSandbox, settings: Any) -> CountingSandbox:
    for name, value in qbo_settings_for(rotating_sandbox).items():
        setattr(settings, name, value)
    rotating_sandbox.refresh_calls = rotating_sandbox.refresh_failures = 0
    return rotating_sandbox


@pytest.mark.django_db
def test_a_401_refreshes_once_and_the_call_succeeds(env: CountingSandbox) -> None:
    realm = env.create_realm(company_name="Refresh Co")
    connection = connect_realm(env, realm)
    old_refresh = connection.refresh_token
    env.expire_access_tokens(realm)

    assert client_for(connection).company_info()["CompanyName"] == "Refresh Co"

    connection.refresh_from_db()
    assert env.refresh_calls == 1
    assert connection.token_version == 2
    assert connection.refresh_token != old_refresh  # rotated, and the new one was stored
    assert connection.last_refreshed_at is not None


@pytest.mark.django_db
def test_a_token_about_to_expire_is_refreshed_before_use(env: CountingSandbox) -> None:
    realm = env.create_realm()
    connection = connect_realm(env, realm)
    QboConnection.objects.filter(pk=connection.pk).update(access_token_expires_at=timezone.now() + dt.timedelta(
        seconds=30))
    unauthorized = env.global_stats["unauthorized"]

    client_for(connection).company_info()

    assert env.refresh_calls == 1
    assert env.global_stats["unauthorized"] == unauthorized  # refreshed proactively, no 401 on the way
    connection.refresh_from_db()
    assert connection.access_token_expires_at > timezone.now() + dt.timedelta(minutes=50)


@pytest.mark.django_db
def test_a_stale_caller_uses_the_token_another_worker_refreshed(env: CountingSandbox) -> None:
    connection = connect_realm(env, env.create_realm())
    first, second = DatabaseTokenProvider(connection.pk), DatabaseTokenProvider(connection.pk)
    stale = first.access_token()
    assert second.access_token() == stale

    fresh = first.refresh(stale)
    assert second.refresh(stale) == fresh  # no second call to Intuit
    assert env.refresh_calls == 1


@pytest.mark.django_db
def test_a_revoked_refresh_token_marks_needs_reauth_and_keeps_queued_work(
    env: CountingSandbox, django_capture_on_commit_callbacks: Any
) -> None:
    org = OrganizationFactory(name="Initech", slug="initech")
    connection = connect_realm(env, env.create_realm(), org)
    items = [QueueItem.objects.create(organization=org, entity_type="Invoice", object_id=str(n), operation="push",
                                      next_attempt_at=timezone.now()) for n in range(5)]
    env.oauth.revoke(connection.refresh_token)  # the user disconnected the app on Intuit's side
    received: list[Any] = []

    def receiver(sender: Any, connection: Any, **kwargs: Any) -> None:
        received.append(connection)

    connection_needs_reauth.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True), pytest.raises(QboReauthRequired) as info:
            client_for(connection).company_info()
    finally:
        connection_needs_reauth.disconnect(receiver)

    assert "manage.py qbo_sync connect --org initech" in str(info.value)
    connection.refresh_from_db()
    assert connection.status == QboConnection.Status.NEEDS_REAUTH
    assert "Reconnect QuickBooks for Initech" in connection.last_error
    assert [c.pk for c in received] == [connection.pk]
    assert connection.refresh_token  # kept: useful to nobody, but the row is not wiped
    assert QueueItem.objects.filter(pk__in=[i.pk for i in items], status="pending").count() == 5
    with pytest.raises(QboReauthRequired, match="Reconnect QuickBooks for Initech"):
        client_for(org)


@pytest.mark.django_db
def test_tokens_never_reach_logs_or_the_database_in_clear(env: CountingSandbox, client: Any, caplog: Any) -> None:
    from urllib.parse import parse_qs, urlsplit

    import requests

    from qbo_sync.services.connect import start_connect
    from tests.factories import UserFactory

    caplog.set_level(logging.DEBUG)
    user = UserFactory(is_superuser=True)
    client.force_login(user)
    org = OrganizationFactory()
    realm = env.create_realm()
    redirect = requests.get(start_connect(org, user) + f"&realm_id={realm}", allow_redirects=False, timeout=10)
    callback = urlsplit(redirect.headers["Location"])
    code = parse_qs(callback.query)["code"][0]
    assert client.get(f"{callback.path}?{callback.query}").status_code == 200
    connection = QboConnection.objects.get(organization=org)
    secrets = [code, CLIENT_SECRET, connection.access_token, connection.refresh_token]
    env.expire_access_tokens(realm)
    qbo = client_for(org)
    qbo.company_info()
    qbo.query("SELECT * FROM Customer")
    connection.refresh_from_db()
    secrets += [connection.access_token, connection.refresh_token]

    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "refreshed" in logged  # the refresh did happen and was logged
    for secret in secrets:
        assert secret not in logged
    with db_connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {QboConnection._meta.db_table}")
        stored = repr(cursor.fetchall())
    for secret in secrets:
        assert secret not in stored


def _hammer_with_threads(connection_id: int, threads: int) -> list[str]:
    results: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def work() -> None:
        try:
            client = client_for(QboConnection.objects.get(pk=connection_id))
            barrier.wait()
            client.company_info()
            outcome = "ok"
        except Exception as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        finally:
            connections.close_all()
        with lock:
            results.append(outcome)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return results


def test_twenty_threads_on_an_expired_token_refresh_it_exactly_once(env: CountingSandbox, shared_db: Any) -> None:
    realm = env.create_realm()
    connection = connect_realm(env, realm)
    env.expire_access_tokens(realm)

    results = _hammer_with_threads(connection.pk, 20)

    assert results == ["ok"] * 20
    assert env.refresh_calls == 1 and env.refresh_failures == 0
    connection.refresh_from_db()
    assert connection.status == QboConnection.Status.CONNECTED
    assert connection.token_version == 2


def _database_url(settings_dict: dict[str, Any]) -> str:
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or ""
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{auth}{settings_dict.get('HOST') or 'localhost'}{port}/{settings_dict['NAME']}"


def test_four_processes_on_an_expired_token_refresh_it_exactly_once(env: CountingSandbox, shared_db: Any) -> None:
    realm = env.create_realm()
    connection = connect_realm(env, realm)
    env.expire_access_tokens(realm)
    child_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "batchly.settings",
        "DATABASE_URL": _database_url(shared_db),
        "QBO_ENVIRONMENT": "local",
        "QBO_API_BASE_URL": env.base_url,
        "QBO_AUTH_BASE_URL": env.base_url,
        "QBO_CLIENT_ID": CLIENT_ID,
        "QBO_CLIENT_SECRET": CLIENT_SECRET,
        "REDIS_URL": "",
        "PYTHONPATH": str(ROOT),
    }
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.connection.refresh_worker", str(connection.pk), "5"],
            cwd=ROOT, env=child_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(4)
    ]
    try:
        for child in children:
            line = child.stdout.readline()
            assert line.strip() == "ready", child.stderr.read()
        for child in children:  # all four start together
            child.stdin.write("go\n")
            child.stdin.flush()
        outcomes = []
        for child in children:
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0, err
            outcomes.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()

    assert [r for o in outcomes for r in o["results"]] == ["ok"] * 20
    assert sum(o["refreshes"] for o in outcomes) == 1
    assert env.refresh_calls == 1 and env.refresh_failures == 0
    connection.refresh_from_db()
    assert connection.token_version == 2
    assert connection.status == QboConnection.Status.CONNECTED
