"""System checks (``manage.py check``), ids ``qbo_sync.E00x`` / ``qbo_sync.W00x``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from qbo_sync.conf import ENVIRONMENTS, qbo_settings
from qbo_sync.exceptions import QboConfigurationError


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
def check_environment(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if qbo_settings.ENVIRONMENT not in ENVIRONMENTS:
        return [checks.Error(
            f"QBO_ENVIRONMENT is {qbo_settings.ENVIRONMENT!r}.",
            hint=f"Use one of: {', '.join(ENVIRONMENTS)}.", id="qbo_sync.E002",
        )]
    return []


@checks.register()
def check_worker_timing(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """django-q2 must kill a drain before it hands the task to a second worker, and a drain ends before both."""
    q = getattr(settings, "Q_CLUSTER", {}) or {}
    timeout, retry = q.get("timeout"), q.get("retry")
    errors: list[checks.CheckMessage] = []
    if timeout is None or retry is None or timeout >= retry:
        errors.append(checks.Error(
            f"Q_CLUSTER timeout ({timeout}) must be set and below retry ({retry}).",
            hint="Otherwise a slow drain is delivered twice. See docs/operations.md.", id="qbo_sync.E003",
        ))
    elif qbo_settings.DRAIN_BUDGET_SECONDS >= timeout:
        errors.append(checks.Error(
            f"QBO_SYNC DRAIN_BUDGET_SECONDS ({qbo_settings.DRAIN_BUDGET_SECONDS}) must be below the "
            f"Q_CLUSTER timeout ({timeout}).", id="qbo_sync.E004",
        ))
    return errors


@checks.register(checks.Tags.security, deploy=True)
def check_token_keys(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if not qbo_settings.TOKEN_KEYS:
        return [checks.Warning(
            "QBO_TOKEN_KEYS is empty: QuickBooks tokens are encrypted with a key derived from SECRET_KEY.",
            hint="Set QBO_TOKEN_KEYS to one or more Fernet keys (newest first).", id="qbo_sync.W001",
        )]
    return []


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
