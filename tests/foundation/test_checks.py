"""``manage.py check`` names every missing or inconsistent setting a host can get wrong, with an id and a hint.

Each test breaks one setting of the demo host (whose settings pass) and expects exactly that check's id."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.core import checks
from django.core.checks.registry import registry
from django.test import override_settings

from batchly.models import Invoice
from qbo_sync.adapters import HostAdapter
from qbo_sync.checks import DOCS, check_sqlite_mode


def ids(**kwargs) -> list[str]:
    messages = registry.run_checks(include_deployment_checks=False, **kwargs)
    return [m.id for m in messages if (m.id or "").startswith("qbo_sync.")]


def messages_for(check_id: str) -> list[checks.CheckMessage]:
    return [m for m in registry.run_checks() if m.id == check_id]


@pytest.fixture(autouse=True)
def development_checkout(settings):
    """The demo host as a checkout runs it: DEBUG on (with DEBUG off its development secrets are errors, which
    tests/security/test_production_checks.py covers)."""
    settings.DEBUG = True


def with_qbo(**values):
    return override_settings(QBO_SYNC={**settings.QBO_SYNC, **values})


def test_the_demo_host_passes_every_check() -> None:
    assert ids() == []


def test_a_project_that_sets_neither_base_url_passes_check() -> None:
    """installation.md's settings name neither API_BASE_URL nor AUTH_BASE_URL: `manage.py check` crashed on them
    (AttributeError: qbo_sync has no setting 'AUTH_BASE_URL'), and so did every command that runs the checks."""
    from qbo_sync.conf import qbo_settings

    plain = {k: v for k, v in settings.QBO_SYNC.items() if k not in ("API_BASE_URL", "AUTH_BASE_URL")}
    with override_settings(QBO_SYNC=plain):
        assert ids() == []
        assert qbo_settings.raw("AUTH_BASE_URL") == "" and qbo_settings.AUTH_BASE_URL == ""
    with override_settings(QBO_SYNC={**plain, "ENVIRONMENT": "local", "API_BASE_URL": "http://127.0.0.1:8795"}):
        assert ids() == []
        assert qbo_settings.TOKEN_URL == "http://127.0.0.1:8795/oauth2/v1/tokens/bearer"


def test_every_message_has_a_hint_that_points_at_shipped_docs_not_the_repository() -> None:
    with override_settings(Q_CLUSTER=None):
        del settings.QBO_SYNC_ORGANIZATION_MODEL
        found = [m for m in registry.run_checks() if (m.id or "").startswith("qbo_sync.")]
    assert {m.id for m in found} == {"qbo_sync.E005", "qbo_sync.E013"}
    for message in found:
        assert message.hint and DOCS in message.hint
        assert "docs/" not in message.hint.replace(DOCS, "")


def test_an_unset_organization_model_is_an_error_before_migrate() -> None:
    with override_settings():
        del settings.QBO_SYNC_ORGANIZATION_MODEL
        assert ids() == ["qbo_sync.E005"]
        [error] = messages_for("qbo_sync.E005")
    assert error.level == checks.ERROR and "auth.Group" in error.msg


def test_an_organization_model_that_is_not_installed() -> None:
    with override_settings(QBO_SYNC_ORGANIZATION_MODEL="shop.Store"):
        assert ids() == ["qbo_sync.E006"]


def test_a_lookup_field_the_tenant_model_lacks() -> None:
    with with_qbo(ORGANIZATION_LOOKUP_FIELD="handle"):
        assert ids() == ["qbo_sync.E007"]


def test_a_reverse_relation_is_no_lookup_field() -> None:
    """``memberships`` names other rows (a reverse relation), not a value of the organization: found by mypy (the
    check accepted it, then every lookup failed with an AttributeError)."""
    with with_qbo(ORGANIZATION_LOOKUP_FIELD="memberships"):
        assert ids() == ["qbo_sync.E007"]


def test_a_tenant_app_without_migrations_is_named_before_migrate_fails(tmp_path, monkeypatch) -> None:
    """A project following installation.md ran `migrate` right after `startapp`: it stopped with Django's
    "ValueError: Dependency on app with no migrations". The check names the app and the command (a warning, not an
    error: `makemigrations` runs the checks too, and must still run)."""
    label = settings.QBO_SYNC_ORGANIZATION_MODEL.split(".")[0]
    (tmp_path / "startapp_migrations").mkdir()
    (tmp_path / "startapp_migrations" / "__init__.py").write_text("")  # what `startapp` leaves: no migration yet
    monkeypatch.syspath_prepend(str(tmp_path))
    for module in ("startapp_migrations", "no_such_migrations_package"):
        with override_settings(MIGRATION_MODULES={label: module}):
            assert ids() == ["qbo_sync.W007"]
            [warning] = messages_for("qbo_sync.W007")
        assert warning.level == checks.WARNING and label in warning.msg
        assert f"makemigrations {label}" in warning.hint
    (tmp_path / "startapp_migrations" / "0001_initial.py").write_text("")
    with override_settings(MIGRATION_MODULES={label: "startapp_migrations"}):
        assert ids() == []
    with override_settings(MIGRATION_MODULES={label: None}):  # migrations turned off on purpose
        assert ids() == []


def test_an_invoice_adapter_without_the_invoice_hooks() -> None:
    """The engine calls ``is_void``, ``void_ids``, ``payment_state`` ... on the invoice adapter: one that does not
    mix in InvoiceAdapterMixin is a configuration error, not an AttributeError at its first push."""
    adapters = {**settings.QBO_SYNC["ENTITY_ADAPTERS"], "Invoice": "tests.foundation.test_checks.PlainInvoiceAdapter"}
    with with_qbo(ENTITY_ADAPTERS=adapters):
        assert ids() == ["qbo_sync.E001"]
        [error] = messages_for("qbo_sync.E001")
    assert "InvoiceAdapterMixin" in error.msg


@pytest.mark.parametrize("missing", ["CLIENT_ID", "CLIENT_SECRET", "REDIRECT_URI"])
def test_missing_credentials_for_intuit_are_named(missing) -> None:
    values = {"ENVIRONMENT": "sandbox", "CLIENT_ID": "AB123", "CLIENT_SECRET": "s3cret",
              "REDIRECT_URI": "https://example.com/qbo/oauth/callback/", missing: ""}
    with with_qbo(**values):
        assert ids() == ["qbo_sync.E008"]
        [error] = messages_for("qbo_sync.E008")
    assert missing in error.msg and "developer.intuit.com" in error.hint
    # A newcomer read "QuickBooks (sandbox)" as the bundled sandbox; the message says whose, the hint the way out.
    assert "Intuit's sandbox companies" in error.msg and 'QBO_SYNC["ENVIRONMENT"] = "local"' in error.hint
    with with_qbo(**{**values, missing: "set"}):
        assert ids() == []


def test_the_bundled_sandbox_only_warns_about_missing_keys() -> None:
    with with_qbo(ENVIRONMENT="local", CLIENT_ID="", CLIENT_SECRET="x", REDIRECT_URI="http://127.0.0.1:8000/cb/"):
        assert ids() == ["qbo_sync.W005"]


@pytest.mark.parametrize("value", ["batchly_typo.qbo_adapters.organizations_for_user", "qbo_sync.conf.nothing_here",
                                   "qbo_sync.conf.DEFAULTS"])
def test_an_organization_resolver_that_does_not_import_or_call(value) -> None:
    with with_qbo(ORGANIZATION_RESOLVER=value):
        assert ids() == ["qbo_sync.E009"]


@pytest.mark.parametrize("critical", [{"Customer": ["emial"]}, {"Invoice": ["total"]}, {"Vendor": ["name"]},
                                      ["email"]])
def test_critical_fields_must_name_synced_fields(critical) -> None:
    with with_qbo(CRITICAL_FIELDS=critical):
        assert ids() == ["qbo_sync.E010"]
    with with_qbo(CRITICAL_FIELDS={"Customer": ["email", "phone"], "Item": ["unit_price"]}):
        assert ids() == []


def test_drf_schema_class_must_be_drf_spectaculars_when_the_api_is_mounted() -> None:
    with override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK,
                                           "DEFAULT_SCHEMA_CLASS": "rest_framework.schemas.openapi.AutoSchema"}):
        assert ids() == ["qbo_sync.E011"]
    without = {k: v for k, v in settings.REST_FRAMEWORK.items() if k != "DEFAULT_SCHEMA_CLASS"}
    with override_settings(REST_FRAMEWORK=without):
        assert ids() == ["qbo_sync.E011"]
    with override_settings(REST_FRAMEWORK=without, ROOT_URLCONF="tests.admin.urls_without_qbo"):
        assert "qbo_sync.E011" not in ids()


def test_unknown_qbo_sync_keys_are_reported_with_a_suggestion() -> None:
    with with_qbo(CRITICAL_FIELD={"Customer": ["email"]}):
        assert ids() == ["qbo_sync.W003"]
        [warning] = messages_for("qbo_sync.W003")
    assert "'CRITICAL_FIELDS'" in warning.hint


def test_a_missing_q_cluster_is_named() -> None:
    with override_settings(Q_CLUSTER=None):
        assert ids() == ["qbo_sync.E013"]
        [error] = messages_for("qbo_sync.E013")
    assert "Q_CLUSTER" in error.msg and '"timeout"' in error.hint


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_sqlite_without_immediate_transactions_is_named() -> None:
    db = {**settings.DATABASES["default"]}
    if db["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip("the check is about SQLite")
    db["OPTIONS"] = {k: v for k, v in (db.get("OPTIONS") or {}).items() if k != "transaction_mode"}
    with override_settings(DATABASES={**settings.DATABASES, "default": db}):
        messages = check_sqlite_mode(databases=["default"])
    assert [m.id for m in messages] == ["qbo_sync.W002"]
    assert "transaction_mode" in messages[0].msg and "IMMEDIATE" in messages[0].hint


def test_a_drain_wait_shorter_than_the_push_delay_is_a_warning() -> None:
    with with_qbo(PUSH_DELAY_SECONDS=5, DRAIN_WAIT_SECONDS=2):
        assert ids() == ["qbo_sync.W006"]
        [warning] = messages_for("qbo_sync.W006")
        assert "minute schedule" in warning.msg and DOCS in warning.hint


def test_the_older_top_level_names_still_work_but_are_deprecated() -> None:
    from qbo_sync.conf import qbo_settings

    kept = {k: v for k, v in settings.QBO_SYNC.items() if k not in ("CLIENT_ID", "API_BASE_URL")}
    with override_settings(QBO_SYNC=kept, QBO_CLIENT_ID="AB-old-style", QBO_API_BASE_URL="http://127.0.0.1:9/"):
        assert qbo_settings.CLIENT_ID == "AB-old-style" and qbo_settings.API_BASE_URL == "http://127.0.0.1:9"
        assert ids() == ["qbo_sync.W004", "qbo_sync.W004"]
        assert {m.hint for m in messages_for("qbo_sync.W004")} == {
            f'Move it into the QBO_SYNC dict as QBO_SYNC["{n}"] (see {DOCS}installation.md).'
            for n in ("CLIENT_ID", "API_BASE_URL")}
    with override_settings(QBO_SYNC={**settings.QBO_SYNC, "CLIENT_ID": "AB-new"}, QBO_CLIENT_ID="AB-old-style"):
        assert qbo_settings.CLIENT_ID == "AB-new"  # QBO_SYNC wins


def test_dotted_path_settings_are_imported_lazily_with_a_clear_error() -> None:
    from qbo_sync.conf import qbo_settings
    from qbo_sync.exceptions import QboConfigurationError

    with with_qbo(ORGANIZATION_RESOLVER="qbo_sync.conf.nothing_here"):  # a typo: no import at startup
        with pytest.raises(QboConfigurationError, match=r'QBO_SYNC\["ORGANIZATION_RESOLVER"\].*does not import'):
            qbo_settings.ORGANIZATION_RESOLVER
        assert qbo_settings.raw("ORGANIZATION_RESOLVER") == "qbo_sync.conf.nothing_here"
    with with_qbo(ORGANIZATION_RESOLVER="qbo_sync.conf.host_label"):
        from qbo_sync.conf import host_label

        assert qbo_settings.ORGANIZATION_RESOLVER is host_label


def test_migrate_refuses_to_run_without_a_tenant_model(tmp_path) -> None:
    """Unset, the first migrate used to create qbo_sync's foreign keys to auth.Group without a word."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QBO_", "DJANGO_"))}
    env.update({"DJANGO_SETTINGS_MODULE": "tests.foundation.settings_without_tenant", "DEBUG": "true",
                "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "REDIS_URL": ""})
    result = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=root, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "qbo_sync.E005" in result.stderr and "QBO_SYNC_ORGANIZATION_MODEL" in result.stderr
    database = tmp_path / "db.sqlite3"
    assert not database.exists() or b"qbo_sync_" not in database.read_bytes()  # no table was created


def test_an_unknown_tax_model_is_named() -> None:
    with with_qbo(TAX_MODEL="manuall"):
        assert ids() == ["qbo_sync.E017"]
    for model in ("detect", "automated", "manual", "none"):
        with with_qbo(TAX_MODEL=model):
            assert ids() == []


class PlainInvoiceAdapter(HostAdapter):
    entity = "Invoice"
    model = Invoice


@pytest.mark.parametrize(("name", "value", "said"), [
    ("CHUNK_SIZE", "sixty", "must be a whole number of at least 1"),
    ("CHUNK_SIZE", 0, "must be a whole number of at least 1"),
    ("TIME_SCALE", 0, "must be a number above 0"),
    ("HTTP_TIMEOUT", (5, 60, 1), "(connect, read) pair"),
    ("THROTTLE_BACKEND", "rediss", "must be one of: auto, database, redis, memory"),
    ("TOKEN_KEYS", "one-key", "must be a list of strings"),
    ("SCHEDULES", {"payments": "2am"}, "['payments'] must be a time of day"),
    ("RECONCILE_AT", "25:00", 'must be a time of day "HH:MM"'),
    ("RETENTION_DAYS", {"jobs": -1}, "['jobs'] must be a whole number of at least 0"),
])
def test_a_value_of_the_wrong_kind_is_named_by_check_and_on_first_use(name, value, said) -> None:
    from qbo_sync.conf import qbo_settings
    from qbo_sync.exceptions import QboConfigurationError

    with with_qbo(**{name: value}):
        assert ids() == ["qbo_sync.E019"]
        [error] = messages_for("qbo_sync.E019")
        assert f'QBO_SYNC["{name}"]' in error.msg and said in error.msg and DOCS in error.hint
        with pytest.raises(QboConfigurationError) as raised:
            getattr(qbo_settings, name)
        assert str(raised.value) == error.msg  # one message, wherever it is met


def test_every_default_is_valid() -> None:
    from qbo_sync.conf import DEFAULTS, problem_with

    assert [name for name, value in DEFAULTS.items() if problem_with(name, value)] == []


def test_every_setting_that_names_code_is_imported_by_qbo_settings_alone() -> None:
    """Import strings are resolved in qbo_sync.conf (DRF's rule): no other module of the package imports a path
    it read from settings."""
    import qbo_sync

    package = Path(qbo_sync.__file__).parent
    importing = sorted(str(path.relative_to(package)) for path in package.rglob("*.py")
                       if "import_string(" in path.read_text(encoding="utf-8"))
    # checks.py imports REST_FRAMEWORK's schema class (DRF's setting); the command imports its own subcommands.
    assert importing == ["checks.py", "conf.py", "management/commands/qbo_sync.py"]


@pytest.mark.parametrize("name", ["ORGANIZATION_RESOLVER", "PERMISSION_CHECKER", "PROCESSOR"])
def test_settings_that_name_code_take_a_path_or_the_callable(name) -> None:
    from qbo_sync.conf import host_label, qbo_settings

    with with_qbo(**{name: "qbo_sync.conf.host_label"}):
        assert qbo_settings.raw(name) == "qbo_sync.conf.host_label" and getattr(qbo_settings, name) is host_label
    with with_qbo(**{name: host_label}):
        assert getattr(qbo_settings, name) is host_label and ids() == []
    with with_qbo(**{name: "qbo_sync.conf.nothing_here"}):
        assert ids() == ["qbo_sync.E009"]
        [error] = messages_for("qbo_sync.E009")
        assert f'QBO_SYNC["{name}"]' in error.msg and "does not import" in error.msg


def test_the_processor_cannot_be_emptied() -> None:
    with with_qbo(PROCESSOR=None):
        assert ids() == ["qbo_sync.E009"]
        [error] = messages_for("qbo_sync.E009")
    assert 'QBO_SYNC["PROCESSOR"] = None' in error.msg and "leave it out for the default" in error.msg


def test_the_processor_is_the_sync_rules_unless_a_setting_names_another() -> None:
    from qbo_sync.conf import qbo_settings
    from qbo_sync.services import process
    from qbo_sync.services.outcomes import Outcome
    from qbo_sync.services.sync import process_chunk

    assert qbo_settings.PROCESSOR is process_chunk

    def every_item_done(organization_id, items):
        return {item: Outcome.completed() for item in items}

    with with_qbo(PROCESSOR=every_item_done):
        assert process.process_items(1, [7, 8]) == {7: Outcome.completed(), 8: Outcome.completed()}
    assert qbo_settings.PROCESSOR is process_chunk
    assert "environ" not in Path(process.__file__).read_text(encoding="utf-8")  # no switch outside settings
