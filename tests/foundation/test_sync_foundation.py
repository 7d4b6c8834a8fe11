"""qbo_sync's foundation: settings, token encryption at rest, adapter registration, checks, the command."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings

from qbo_sync import crypto
from qbo_sync.adapters import get_adapter, registry
from qbo_sync.conf import qbo_settings
from qbo_sync.exceptions import QboConfigurationError
from qbo_sync.models import QboConnection, SyncLog
from tests.factories import CustomerFactory, InvoiceFactory, OrganizationFactory

RAW_ACCESS = "eyJraWQiOiJSQVctQUNDRVNTLVRPS0VOIn0.secret-access"
RAW_REFRESH = "AB11-RAW-REFRESH-TOKEN-9999"


@pytest.mark.django_db
def test_tokens_are_encrypted_at_rest_and_never_logged(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    conn = QboConnection(organization=OrganizationFactory(), realm_id="123", status="connected")
    conn.access_token = RAW_ACCESS
    conn.refresh_token = RAW_REFRESH
    conn.save()

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM qbo_sync_qboconnection")
        stored = repr(cursor.fetchall())
    assert RAW_ACCESS not in stored and RAW_REFRESH not in stored
    assert "secret-access" not in stored
    loaded = QboConnection.objects.get(pk=conn.pk)
    assert loaded.access_token == RAW_ACCESS and loaded.refresh_token == RAW_REFRESH
    assert RAW_ACCESS not in str(loaded) and RAW_ACCESS not in caplog.text and RAW_REFRESH not in caplog.text


@pytest.mark.django_db
def test_key_rotation_keeps_tokens_readable(capsys) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(QBO_SYNC={**settings.QBO_SYNC, "TOKEN_KEYS": [old]}):
        conn = QboConnection(organization=OrganizationFactory(), realm_id="1", status="connected")
        conn.access_token, conn.refresh_token = RAW_ACCESS, RAW_REFRESH
        conn.save()
    with override_settings(QBO_SYNC={**settings.QBO_SYNC, "TOKEN_KEYS": [new, old]}):
        call_command("qbo_sync", "rotate-keys")
        assert "1 connection" in capsys.readouterr().out
    with override_settings(QBO_SYNC={**settings.QBO_SYNC, "TOKEN_KEYS": [new]}):
        assert QboConnection.objects.get(pk=conn.pk).refresh_token == RAW_REFRESH
    with override_settings(QBO_SYNC={**settings.QBO_SYNC, "TOKEN_KEYS": [Fernet.generate_key().decode()]}):
        with pytest.raises(QboConfigurationError, match="cannot be decrypted"):
            QboConnection.objects.get(pk=conn.pk).access_token


def test_short_token_keys_are_refused() -> None:
    with override_settings(QBO_SYNC={**settings.QBO_SYNC, "TOKEN_KEYS": ["too-short"]}):
        with pytest.raises(QboConfigurationError, match="at least 32"):
            crypto.encrypt("x")


@pytest.mark.parametrize(
    ("environment", "api", "token"),
    [
        ("production", "https://quickbooks.api.intuit.com", "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"),
        ("sandbox", "https://sandbox-quickbooks.api.intuit.com",
         "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"),
        ("local", "http://127.0.0.1:8765", "http://127.0.0.1:8765/oauth2/v1/tokens/bearer"),
    ],
)
def test_endpoints_follow_the_environment(environment, api, token) -> None:
    with override_settings(QBO_SYNC={**settings.QBO_SYNC, "ENVIRONMENT": environment, "API_BASE_URL": "",
                                     "AUTH_BASE_URL": ""}):
        assert qbo_settings.API_BASE_URL == api
        assert qbo_settings.TOKEN_URL == token


def test_explicit_base_urls_win_and_qbo_sync_dict_overrides_top_level() -> None:
    with override_settings(QBO_SYNC={**settings.QBO_SYNC, "ENVIRONMENT": "local",
                                     "API_BASE_URL": "http://127.0.0.1:9999/"}):
        assert qbo_settings.API_BASE_URL == "http://127.0.0.1:9999"
        assert qbo_settings.AUTHORIZE_URL == "http://127.0.0.1:9999/connect/oauth2"
    with override_settings(QBO_SYNC={"CHUNK_SIZE": 7}):
        assert qbo_settings.CHUNK_SIZE == 7
        assert qbo_settings.MINOR_VERSION == 75
    with pytest.raises(AttributeError):
        qbo_settings.NOT_A_SETTING


@pytest.mark.django_db
def test_adapters_are_registered_from_settings() -> None:
    from batchly.models import Customer, Invoice

    assert set(registry.entities()) == {"Customer", "Item", "Invoice"}
    assert registry.for_model(Customer).entity == "Customer"
    customer = CustomerFactory()
    values = get_adapter("Customer").to_values(customer)
    assert values["display_name"] == customer.display_name and values["active"] is True
    invoice = InvoiceFactory()
    inv_values = get_adapter("Invoice").to_values(invoice)
    assert inv_values["customer_object_id"] == str(invoice.customer_id)
    assert len(inv_values["lines"]) == 2
    assert registry.for_model(Invoice) is get_adapter("Invoice")


def test_a_reverse_relation_is_not_an_editable_value() -> None:
    """A typed value is checked through the host field of that name; a reverse relation (a customer's ``invoices``)
    is none, so the value is refused (it was an AttributeError; found by mypy)."""
    with pytest.raises(ValidationError, match="invoices cannot be edited here"):
        get_adapter("Customer").clean_value("invoices", "x")
    with pytest.raises(ValidationError, match="nickname cannot be edited here"):
        get_adapter("Customer").clean_value("nickname", "x")


def test_bad_adapter_settings_fail_clearly() -> None:
    from qbo_sync.checks import check_adapters

    with override_settings(QBO_SYNC={"ENTITY_ADAPTERS": {"Customer": "nowhere.Adapter"}}):
        errors = check_adapters()
        assert errors and errors[0].id == "qbo_sync.E001" and "nowhere.Adapter" in errors[0].msg
    with override_settings(QBO_SYNC={"ENTITY_ADAPTERS": {"SalesOrder": "batchly.qbo_adapters.CustomerAdapter"}}):
        with pytest.raises(QboConfigurationError, match="syncs Customer, Item, Invoice"):
            registry.entities()
    with override_settings(QBO_SYNC={"ENTITY_ADAPTERS": {}}):
        with pytest.raises(QboConfigurationError, match="No adapter is registered for Item"):
            get_adapter("Item")
    assert registry.entities() == ["Customer", "Item", "Invoice"]  # leaving override_settings reset the registry


def test_qbo_sync_never_imports_the_host() -> None:
    """qbo_sync is pluggable: no module of it imports batchly."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "qbo_sync"
    offenders = [str(p) for p in root.rglob("*.py") if "batchly" in p.read_text().replace("Batchly", "")
                 and any(line.lstrip().startswith(("import batchly", "from batchly"))
                         for line in p.read_text().splitlines())]
    assert offenders == []


def test_sandbox_imports_nothing_of_ours() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "qbo_sync" / "sandbox"
    bad = []
    for path in root.rglob("*.py"):
        for line in path.read_text().splitlines():
            s = line.strip()
            if s.startswith(("from qbo_sync", "import qbo_sync", "from django", "import django")) and \
                    not s.startswith(("from qbo_sync.sandbox", "import qbo_sync.sandbox")):
                bad.append(f"{path.name}: {s}")
    assert bad == []


@pytest.mark.django_db
def test_sync_log_is_append_only() -> None:
    entry = SyncLog.objects.create(event="test", message="hello")
    entry.message = "rewritten"
    with pytest.raises(ValueError, match="append-only"):
        entry.save()


@pytest.mark.django_db
def test_sqlite_runs_in_wal_mode_with_immediate_transactions() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite-only settings")
    assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] >= 20000
    assert sqlite3.sqlite_version_info >= (3, 7)


def test_settings_file_database_uses_wal(tmp_path) -> None:
    """The pragma line in settings turns WAL on for a file database (the in-memory test DB cannot show it)."""
    from django.conf import settings

    init = settings.DATABASES["default"].get("OPTIONS", {}).get("init_command", "")
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip("SQLite-only settings")
    db = sqlite3.connect(tmp_path / "x.sqlite3")
    db.executescript(init)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.django_db
def test_command_bad_input_is_one_line_and_non_zero() -> None:
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("qbo_sync", "no-such-subcommand")


@pytest.mark.django_db
def test_system_checks_pass(settings) -> None:
    settings.DEBUG = True  # a development checkout (DEBUG off with its secrets: tests/security/test_production_checks)
    call_command("check")
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
