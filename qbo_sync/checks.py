"""System checks (``manage.py check``; ``migrate`` runs them too), ids ``qbo_sync.E0xx`` / ``qbo_sync.W0xx``.

Every message names the setting and carries a hint. Hints point at the documentation that ships with the package:
an installed qbo-sync has it under ``<prefix>/share/doc/qbo-sync/`` (``DOCS`` below).
"""

from __future__ import annotations

import difflib
from typing import Any

from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from qbo_sync.conf import DEFAULTS, ENVIRONMENTS, EXTRA_KEYS, IMPORT_STRINGS, TOP_LEVEL, qbo_settings
from qbo_sync.exceptions import QboConfigurationError

#: Where the shipped documentation lives in an installed qbo-sync (relative to the environment's prefix).
DOCS = "share/doc/qbo-sync/"
INSTALL_DOC = f"{DOCS}installation.md"
SPECTACULAR_SCHEMA = "drf_spectacular.openapi.AutoSchema"
INTUIT_ENVIRONMENT_NAMES = ("production", "sandbox")


def _setting(name: str) -> Any:
    """The setting's value, or None when it is not valid (check_setting_values reports that, once)."""
    try:
        return getattr(qbo_settings, name)
    except QboConfigurationError:
        return None


@checks.register()
def check_adapters(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from qbo_sync.adapters import registry

    registry.reset()
    try:
        registry.entities()
    except QboConfigurationError as exc:
        return [checks.Error(str(exc), hint="Fix QBO_SYNC['ENTITY_ADAPTERS'].", id="qbo_sync.E001")]
    return []


@checks.register()
def check_entity_registry(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The registered entities (``qbo_sync.mapping.MAPPERS``) fit together and fit the entity columns, which accept
    any registered name (a validator, not ``choices``: a new entity needs no migration)."""
    from qbo_sync import registry
    from qbo_sync.models.base import ENTITY_NAME_MAX_LENGTH

    return [checks.Error(f"Entity registry: {problem}.", hint="Fix the entity's SPEC in its mapping module "
                         f"(docs/architecture.md, 'How to add an entity'; {DOCS}architecture.md when installed).",
                         id="qbo_sync.E018")
            for problem in registry.problems(max_length=ENTITY_NAME_MAX_LENGTH)]


@checks.register()
def check_environment(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if _setting("ENVIRONMENT") not in ENVIRONMENTS:
        return [checks.Error(
            f'QBO_SYNC["ENVIRONMENT"] is {_setting("ENVIRONMENT")!r}.',
            hint=f"Use one of: {', '.join(ENVIRONMENTS)}.", id="qbo_sync.E002",
        )]
    return []


@checks.register()
def check_tax_model(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from qbo_sync.mapping.invoices import TAX_MODELS

    if _setting("TAX_MODEL") not in ("detect", *TAX_MODELS):
        return [checks.Error(
            f'QBO_SYNC["TAX_MODEL"] is {_setting("TAX_MODEL")!r}.',
            hint=f"Use one of: detect, {', '.join(TAX_MODELS)} (how the QuickBooks company charges sales tax).",
            id="qbo_sync.E017",
        )]
    return []


@checks.register()
def check_worker_timing(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """django-q2 must kill a drain before it hands the task to a second worker, and a drain ends before both."""
    q = getattr(settings, "Q_CLUSTER", {}) or {}
    if not q:
        return []  # qbo_sync.E013 says so
    timeout, retry = q.get("timeout"), q.get("retry")
    errors: list[checks.CheckMessage] = []
    if timeout is None or retry is None or timeout >= retry:
        errors.append(checks.Error(
            f"Q_CLUSTER timeout ({timeout}) must be set and below retry ({retry}).",
            hint=f"Otherwise a slow drain is delivered twice. See {DOCS}operations.md.", id="qbo_sync.E003",
        ))
    budget = _setting("DRAIN_BUDGET_SECONDS")
    if not errors and budget is not None and budget >= timeout:
        errors.append(checks.Error(
            f"QBO_SYNC DRAIN_BUDGET_SECONDS ({budget}) must be below the Q_CLUSTER timeout ({timeout}).",
            id="qbo_sync.E004",
        ))
    wait, delay = _setting("DRAIN_WAIT_SECONDS"), _setting("PUSH_DELAY_SECONDS")
    if wait is not None and delay is not None and wait < delay:
        errors.append(checks.Warning(
            f"QBO_SYNC DRAIN_WAIT_SECONDS ({wait}) is below PUSH_DELAY_SECONDS ({delay}): the drain a save kicks "
            "stops before the save is due, which then waits for the minute schedule.",
            hint=f"Keep DRAIN_WAIT_SECONDS at or above PUSH_DELAY_SECONDS. See {DOCS}operations.md.",
            id="qbo_sync.W006",
        ))
    return errors


@checks.register(checks.Tags.security, deploy=True)
def check_token_keys(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if settings.DEBUG and not _setting("TOKEN_KEYS"):  # with DEBUG off, qbo_sync.E015 refuses to start instead
        return [checks.Warning(
            'QBO_SYNC["TOKEN_KEYS"] is empty: QuickBooks tokens are encrypted with a key derived from SECRET_KEY.',
            hint='Set QBO_SYNC["TOKEN_KEYS"] to one or more Fernet keys (newest first).', id="qbo_sync.W001",
        )]
    return []


def _weak_secret_key(key: str) -> bool:
    """A development key: Django's ``django-insecure-`` prefix, or too short or too uniform to be a real secret
    (the criteria of Django's own ``security.W009``)."""
    return key.startswith("django-insecure-") or len(key) < 50 or len(set(key)) < 5


def _webhooks_routed() -> bool:
    from django.urls import NoReverseMatch, reverse

    try:
        reverse("qbo_sync:webhooks")
    except NoReverseMatch:
        return False
    return True


@checks.register(checks.Tags.security)
def check_production_secrets(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """With DEBUG off the process is a deployment: development secrets there are errors, so ``runserver``,
    ``migrate``, ``qcluster`` and ``check --deploy`` refuse to start rather than run with them."""
    if settings.DEBUG:
        return []
    errors: list[checks.CheckMessage] = []
    if _weak_secret_key(str(getattr(settings, "SECRET_KEY", "") or "")):
        errors.append(checks.Error(
            "SECRET_KEY is a development key while DEBUG is off: sessions can be forged and every QuickBooks "
            "token decrypts from a database dump.",
            hint=f"Set SECRET_KEY to a long random value (50+ characters). See {DOCS}permissions.md.",
            id="qbo_sync.E014",
        ))
    if not _setting("TOKEN_KEYS"):
        errors.append(checks.Error(
            'QBO_SYNC["TOKEN_KEYS"] is empty while DEBUG is off: QuickBooks tokens are encrypted with the '
            "development default (a key derived from SECRET_KEY).",
            hint='Set QBO_SYNC["TOKEN_KEYS"] to one or more Fernet keys, newest first (python -c "from '
                 "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())\"). "
                 f"See {DOCS}permissions.md.",
            id="qbo_sync.E015",
        ))
    if not _setting("WEBHOOK_VERIFIER_TOKEN") and _webhooks_routed():
        errors.append(checks.Error(
            'QBO_SYNC["WEBHOOK_VERIFIER_TOKEN"] is empty while DEBUG is off and the webhook endpoint is routed: '
            "every delivery from QuickBooks is refused.",
            hint="Copy the verifier token of your Intuit app's webhooks into QBO_SYNC[\"WEBHOOK_VERIFIER_TOKEN\"], "
                 f"or do not route qbo_sync's webhooks/ URL. See {DOCS}permissions.md.",
            id="qbo_sync.E016",
        ))
    return errors


@checks.register(checks.Tags.database)
def check_sqlite_mode(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    db = settings.DATABASES.get("default", {})
    if db.get("ENGINE") == "django.db.backends.sqlite3":
        if (db.get("OPTIONS") or {}).get("transaction_mode") != "IMMEDIATE":
            return [checks.Warning(
                "SQLite without transaction_mode IMMEDIATE: web and worker processes will hit 'database is locked'.",
                hint='Set DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE".', id="qbo_sync.W002",
            )]
    return []


@checks.register()
def check_organization_model(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Like AUTH_USER_MODEL: the tenant model must be named before the first migrate (unset, the foreign keys of
    qbo_sync's tables would point at auth.Group)."""
    name = getattr(settings, "QBO_SYNC_ORGANIZATION_MODEL", None)
    if not name:
        return [checks.Error(
            "QBO_SYNC_ORGANIZATION_MODEL is not set: qbo_sync's tables would be tied to auth.Group.",
            hint='Set QBO_SYNC_ORGANIZATION_MODEL = "yourapp.YourTenantModel" in settings before the first '
                 f"migrate (see {INSTALL_DOC}).", id="qbo_sync.E005",
        )]
    from django.apps import apps

    try:
        model = apps.get_model(name, require_ready=False)
    except (LookupError, ValueError):
        return [checks.Error(
            f"QBO_SYNC_ORGANIZATION_MODEL is {name!r}, which is not an installed model.",
            hint='Use "app_label.ModelName" of an app in INSTALLED_APPS.', id="qbo_sync.E006",
        )]
    from qbo_sync.organizations import lookup_field

    try:
        lookup_field(model)  # a field of the row itself: a reverse relation names other rows, not a value
    except QboConfigurationError as exc:
        return [checks.Error(
            str(exc),
            hint='Name a unique field of the tenant model (e.g. "slug"), or leave it unset for "pk".',
            id="qbo_sync.E007",
        )]
    label = model._meta.app_label
    if not _has_migrations(label):
        return [checks.Warning(
            f"The tenant model's app {label!r} has no migrations: qbo_sync's tables point at its table, so "
            f"`migrate` would stop (\"Dependency on app with no migrations: {label}\").",
            hint=f"Run `python manage.py makemigrations {label}` before the first migrate (see {INSTALL_DOC}).",
            id="qbo_sync.W007",
        )]
    return []


def _has_migrations(app_label: str) -> bool:
    """Whether the app has a migration file, looked up the way Django's migration loader does (its migrations
    package, or ``MIGRATION_MODULES``); an app whose migrations are turned off (``None``) counts as having them."""
    import importlib.util
    import pkgutil

    from django.db.migrations.loader import MigrationLoader

    module_name, _ = MigrationLoader.migrations_module(app_label)
    if module_name is None:
        return True
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    if spec.submodule_search_locations is None:
        return True  # a single module: Django's loader decides what it means
    return any(not name.startswith(("_", "~")) for _, name, is_pkg in
               pkgutil.iter_modules(spec.submodule_search_locations) if not is_pkg)


@checks.register()
def check_credentials(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Connecting needs the app's keys and its redirect URI: an error for Intuit's environments, a warning for the
    bundled sandbox (``local``, which accepts any keys, but ``connect`` still needs some)."""
    missing = [name for name in ("CLIENT_ID", "CLIENT_SECRET", "REDIRECT_URI") if not _setting(name)]
    if not missing:
        return []
    names = ", ".join(f'QBO_SYNC["{m}"]' for m in missing)
    env = _setting("ENVIRONMENT")
    if env in INTUIT_ENVIRONMENT_NAMES:
        where = "Intuit's sandbox companies" if env == "sandbox" else "QuickBooks Online (production)"
        return [checks.Error(
            f"{names} not set: connecting to {where} would fail (ENVIRONMENT is {env!r}).",
            hint="Copy the keys and add the redirect URI (https://your.host/qbo/oauth/callback/) from your app on "
                 "developer.intuit.com. To try qbo_sync without an Intuit account, set QBO_SYNC[\"ENVIRONMENT\"] = "
                 "\"local\" (the bundled sandbox, `python -m qbo_sync.sandbox`) with any non-empty keys "
                 f"(see {INSTALL_DOC}).", id="qbo_sync.E008",
        )]
    return [checks.Warning(
        f"{names} not set: `qbo_sync connect` would fail, even against the bundled sandbox.",
        hint="Any non-empty keys work with the bundled sandbox; the redirect URI is where qbo_sync's "
             f"oauth/callback/ view is served (see {INSTALL_DOC}).", id="qbo_sync.W005",
    )]


@checks.register()
def check_setting_values(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every QBO_SYNC value, validated and imported as ``qbo_settings`` would on first use (qbo_sync.conf): a dotted
    path that does not import or is not callable (E009), a value of the wrong kind (E019). ``ENTITY_ADAPTERS`` is
    E001's, ``ENVIRONMENT`` E002's, ``TAX_MODEL`` E017's."""
    user = getattr(settings, "QBO_SYNC", None) or {}
    if not isinstance(user, dict):
        return []  # qbo_sync.E012 says so
    errors: list[checks.CheckMessage] = []
    for name, message in qbo_settings.problems():
        if name == "ENTITY_ADAPTERS":
            continue
        if name in IMPORT_STRINGS:
            errors.append(checks.Error(
                message, hint="Give the dotted path of a function, e.g. \"yourapp.qbo.organizations_for_user\" "
                              f"(see {INSTALL_DOC}).", id="qbo_sync.E009",
            ))
        else:
            errors.append(checks.Error(message, hint=f"The settings and their defaults are listed in {INSTALL_DOC}.",
                                       id="qbo_sync.E019"))
    return errors


@checks.register()
def check_critical_fields(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from qbo_sync.mapping import MAPPERS
    from qbo_sync.mapping.base import Direction

    critical = _setting("CRITICAL_FIELDS") or {}
    if not isinstance(critical, dict):
        return [checks.Error('QBO_SYNC["CRITICAL_FIELDS"] must be a dict.',
                             hint='e.g. {"Customer": ["email"]}.', id="qbo_sync.E010")]
    pulled = {name: m.SPEC for name, m in MAPPERS.items()
              if getattr(m, "SPEC", None) is not None and m.SPEC.direction == Direction.BOTH}
    errors: list[checks.CheckMessage] = []
    for entity, fields in critical.items():
        spec = pulled.get(entity)
        if spec is None:
            errors.append(checks.Error(
                f'QBO_SYNC["CRITICAL_FIELDS"] names {entity!r}, which is not synced both ways.',
                hint=f"Critical fields exist for: {', '.join(sorted(pulled))}.", id="qbo_sync.E010",
            ))
            continue
        if isinstance(fields, str):
            fields = [fields]
        unknown = [f for f in fields if f not in spec.fields]
        if unknown:
            errors.append(checks.Error(
                f'QBO_SYNC["CRITICAL_FIELDS"]["{entity}"] names unknown fields: {", ".join(map(repr, unknown))}.',
                hint=f"{entity} syncs: {', '.join(spec.fields)}.", id="qbo_sync.E010",
            ))
    return errors


@checks.register(checks.Tags.urls)
def check_schema_class(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """qbo_sync's API documents itself with drf-spectacular; DRF's own schema class makes /api/schema/ a 500."""
    from django.urls import NoReverseMatch, reverse

    try:
        reverse("qbo_sync_api:sync")
    except NoReverseMatch:
        return []  # the host does not mount qbo_sync's API
    schema = (getattr(settings, "REST_FRAMEWORK", None) or {}).get("DEFAULT_SCHEMA_CLASS")
    if schema is not None and not isinstance(schema, str):
        schema = f"{schema.__module__}.{schema.__qualname__}"
    if schema == SPECTACULAR_SCHEMA:
        return []
    if schema:
        try:
            from drf_spectacular.openapi import AutoSchema

            if issubclass(import_string(schema), AutoSchema):
                return []
        except ImportError:
            pass
    return [checks.Error(
        f"REST_FRAMEWORK[\"DEFAULT_SCHEMA_CLASS\"] is {schema or 'unset'}: qbo_sync's API schema needs "
        "drf-spectacular's.",
        hint=f'Set REST_FRAMEWORK = {{"DEFAULT_SCHEMA_CLASS": "{SPECTACULAR_SCHEMA}", ...}} and add '
             f'"drf_spectacular" to INSTALLED_APPS (see {INSTALL_DOC}).', id="qbo_sync.E011",
    )]


@checks.register()
def check_settings_keys(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Unknown keys in QBO_SYNC (a typo would be silently ignored otherwise), and the older top-level names."""
    user = getattr(settings, "QBO_SYNC", None) or {}
    messages: list[checks.CheckMessage] = []
    if not isinstance(user, dict):
        return [checks.Error("QBO_SYNC must be a dict.", hint=f"See {INSTALL_DOC}.", id="qbo_sync.E012")]
    known = set(DEFAULTS) | set(EXTRA_KEYS)
    for key in sorted(set(user) - known, key=str):
        close = difflib.get_close_matches(str(key), sorted(known), n=1)
        messages.append(checks.Warning(
            f"QBO_SYNC has an unknown key {key!r}; qbo_sync ignores it.",
            hint=(f"Did you mean {close[0]!r}? " if close else "") + f"The settings are listed in {INSTALL_DOC}.",
            id="qbo_sync.W003",
        ))
    old = [(name, top) for name, top in TOP_LEVEL.items() if top.startswith("QBO_") and hasattr(settings, top)]
    old += [(name, f"QBO_{name}") for name in ("API_BASE_URL", "AUTH_BASE_URL") if hasattr(settings, f"QBO_{name}")]
    for name, top in old:
        messages.append(checks.Warning(
            f"The top-level setting {top} is deprecated; qbo_sync reads it only when QBO_SYNC has no {name!r}.",
            hint=f'Move it into the QBO_SYNC dict as QBO_SYNC["{name}"] (see {INSTALL_DOC}).', id="qbo_sync.W004",
        ))
    return messages


@checks.register()
def check_q_cluster(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if getattr(settings, "Q_CLUSTER", None):
        return []
    return [checks.Error(
        "Q_CLUSTER is not set: qbo_sync's work runs in django-q2 workers, which need it.",
        hint='e.g. Q_CLUSTER = {"name": "qbo", "workers": 2, "timeout": 300, "retry": 360, "orm": "default"} '
             f'and "django_q" in INSTALLED_APPS (see {INSTALL_DOC}).', id="qbo_sync.E013",
    )]
